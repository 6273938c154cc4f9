// Reading credential stores (and sending them away).

rule credential_store_access
{
    meta:
        behaviour = "credential-read"
        severity = "low"
        confidence = "low"
        description = "names a credential store (SSH keys, cloud, Kubernetes, browser data, token files)"
    strings:
        $ssh = /\.ssh\/(id_(rsa|dsa|ecdsa|ed25519)|authorized_keys|known_hosts)/
        $aws = ".aws/credentials"
        $gcloud = /\.config\/gcloud\/(credentials\.db|application_default_credentials\.json|access_tokens\.db)/
        $azure = ".azure/accessTokens.json"
        $kube = ".kube/config"
        $docker = ".docker/config.json"
        $gitcred = ".git-credentials"
        $npmrc = ".npmrc"
        $pypirc = ".pypirc"
        $netrc = /['"\/]\.netrc\b/
        $chrome = /(Google\/Chrome|google-chrome|BraveSoftware|Microsoft\/Edge)[^\n]{0,80}(Login Data|Cookies|Local State)/
        $firefox = /(\.mozilla\/firefox|Mozilla\/Firefox\/Profiles)[^\n]{0,80}(logins\.json|key4\.db|cookies\.sqlite)?/
        $wallet = /(\.electrum\/wallets|Exodus\/exodus\.wallet|\.bitcoin\/wallet\.dat|Ethereum\/keystore)/
        $shadow = "/etc/shadow"
    condition:
        is_text and any of them
}

rule credential_theft
{
    meta:
        behaviour = "credential-exfiltration"
        severity = "critical"
        confidence = "high"
        description = "reads several credential stores or dumps the whole environment, and talks to the network"
    strings:
        $ssh = /\.ssh\/(id_(rsa|dsa|ecdsa|ed25519)|authorized_keys)/
        $aws = ".aws/credentials"
        $gcloud = /\.config\/gcloud\/(credentials\.db|application_default_credentials\.json|access_tokens\.db)/
        $azure = ".azure/accessTokens.json"
        $kube = ".kube/config"
        $docker = ".docker/config.json"
        $gitcred = ".git-credentials"
        $pypirc = ".pypirc"
        $chrome = /(Google\/Chrome|google-chrome|BraveSoftware)[^\n]{0,80}(Login Data|Cookies)/
        $firefox = /(logins\.json|key4\.db)/
        $wallet = /(\.electrum\/wallets|Exodus\/exodus\.wallet|\.bitcoin\/wallet\.dat)/
        $envdump = /(dict\s*\(\s*os\.environ\s*\)|os\.environ\.copy\s*\(\s*\)|json\.dumps\s*\(\s*(dict\s*\()?\s*os\.environ|process\.env\))/
        $net = /\b(requests\.(post|put)|httpx\.(post|put)|urlopen\s*\(|urllib\.request\.Request|http\.client\.HTTPS?Connection|socket\.(socket|create_connection)|fetch\s*\(|curl\s+[^\n]{0,100}(-d|--data|-F|-T))/
    condition:
        is_text and $net and (
            2 of ($ssh, $aws, $gcloud, $azure, $kube, $docker, $gitcred, $pypirc, $chrome, $firefox, $wallet)
            or ($envdump and 1 of ($ssh, $aws, $gcloud, $azure, $kube, $docker, $gitcred, $pypirc, $chrome, $firefox, $wallet))
        )
}

rule environment_dump_network
{
    meta:
        behaviour = "env-exfiltration"
        severity = "medium"
        confidence = "low"
        description = "serialises the whole environment in a file that talks to the network"
    strings:
        $envdump = /(json\.dumps\s*\(\s*(dict\s*\()?\s*os\.environ|str\s*\(\s*os\.environ\s*\)|base64\.b64encode\s*\([^\n]{0,40}os\.environ)/
        $net = /\b(requests\.(post|put)|httpx\.(post|put)|urlopen\s*\(|urllib\.request\.Request|socket\.(socket|create_connection))/
    condition:
        is_text and $envdump and $net
}
