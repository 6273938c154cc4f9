// Network access and download-and-execute.

rule network_access
{
    meta:
        behaviour = "network"
        severity = "info"
        confidence = "low"
        description = "uses an HTTP client, sockets or a download tool"
    strings:
        $a = /\b(urllib\.request|urllib2|http\.client|requests\.(get|post|put|request|Session)|httpx\.|aiohttp\.|socket\.socket|socket\.create_connection|urlopen\s*\(|urlretrieve\s*\()/
        $b = /\b(curl|wget)\s+(-[A-Za-z]+\s+)*['"]?https?:\/\//
        $c = /\bInvoke-WebRequest\b/
    condition:
        is_text and any of them
}

rule download_and_execute
{
    meta:
        behaviour = "download-execute"
        severity = "critical"
        confidence = "high"
        description = "downloads a file, makes it executable or starts it"
    strings:
        // shell: fetch, then chmod/nohup/run the fetched file
        $fetch_run = /(curl|wget)\s[^\n]{1,300}(&&|;)\s*(chmod\s+(\+x|[0-7]{3,4})|nohup\s|\.\/[A-Za-z0-9_.-]+)/
        // Python: a fetched file made executable and started
        $py_fetch = /(urlretrieve|urlopen|requests\.get|httpx\.get|\.download\()/
        $py_chmod = /os\.chmod\s*\([^\n]{1,120}(0o?7[0-7]{2}|0o?5[0-7]{2}|S_IEXEC|S_IXUSR|\| *0o?111)/
        $py_run = /(subprocess\.(Popen|run|call|check_call|check_output)|os\.system|os\.popen|os\.exec[lv]|Popen)\s*\(/
        $py_exec_fetched = /exec\s*\(\s*(urlopen|requests\.get|urllib\.request\.urlopen)\s*\(/
    condition:
        is_text and not is_doc and (
            $fetch_run or $py_exec_fetched
            or (is_python and $py_fetch and $py_chmod and $py_run)
        )
}

rule download_pipe_shell
{
    meta:
        behaviour = "download-pipe-shell"
        severity = "medium"
        confidence = "low"
        description = "pipes a downloaded script into a shell (common in install instructions, and in droppers)"
    strings:
        $pipe_sh = /(curl|wget)\s[^\n|]{1,300}\|\s*(sudo\s+)?(ba|z|da)?sh\b/
    condition:
        is_text and not is_doc and $pipe_sh
}
