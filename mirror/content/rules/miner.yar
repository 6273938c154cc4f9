// Cryptocurrency miners.

rule miner_indicators
{
    meta:
        behaviour = "crypto-miner"
        severity = "critical"
        confidence = "high"
        description = "miner binary names, stratum URLs, mining pools or wallet arguments"
    strings:
        $xmrig = /\bxmrig\b/ nocase
        $stratum = /stratum\+(tcp|ssl|tls):\/\//
        $pool1 = /\b(pool\.supportxmr\.com|xmrpool\.eu|pool\.minexmr\.com|gulf\.moneroocean\.stream|moneroocean\.stream|xmr\.nanopool\.org|nanopool\.org|pool\.hashvault\.pro|2miners\.com|f2pool\.com|herominers\.com|c3pool\.com|unmineable\.com)\b/
        $donate = "--donate-level"
        $algo = /--(algo|coin)[= ](rx\/0|cn\/|randomx|monero|xmr)/
        $wallet = /['"]4[0-9AB][1-9A-HJ-NP-Za-km-z]{93}['"]/
        $cpuminer = /\b(cpuminer|minerd|t-rex|lolminer|nbminer|phoenixminer)\b/
    condition:
        is_text and (
            $stratum or $donate or $algo or $pool1
            or ($xmrig and ($wallet or $cpuminer or #xmrig >= 2))
            or ($wallet and ($xmrig or $cpuminer))
            or ($xmrig and is_python)
        )
}
