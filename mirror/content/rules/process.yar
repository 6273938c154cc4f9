// Starting processes, and starting them so that nobody sees it.
// Globals (set per file by mirror.content.rules): ext, is_python, is_text.

rule silent_process_spawn
{
    meta:
        behaviour = "silent-process-spawn"
        severity = "low"
        confidence = "low"
        description = "starts a process with its output discarded or detached from the caller"
    strings:
        $popen = /subprocess\.(Popen|run|call|check_call)\s*\(/
        $popen2 = /\bPopen\s*\(/
        $devnull = /std(out|err)\s*=\s*(subprocess\.)?DEVNULL/
        $devnull2 = /std(out|err)\s*=\s*open\s*\(\s*os\.devnull/
        $detach1 = /start_new_session\s*=\s*True/
        $detach2 = /creationflags\s*=[^\n]{0,80}(DETACHED_PROCESS|CREATE_NO_WINDOW|CREATE_NEW_PROCESS_GROUP)/
        $nohup = /nohup\s[^\n]{1,200}&/
        $setsid = "os.setsid"
    condition:
        is_text and (
            (any of ($popen*) and (any of ($devnull*) or any of ($detach*) or $setsid))
            or $nohup
        )
}

rule shell_command_call
{
    meta:
        behaviour = "shell-command"
        severity = "low"
        confidence = "low"
        description = "runs a shell command line (os.system / os.popen / shell=True)"
    strings:
        $system = /\bos\.(system|popen|exec[lv]p?e?|spawn[lv]p?e?)\s*\(/
        $shell = /shell\s*=\s*True/
        $pty = "pty.spawn("
    condition:
        is_python and any of them
}

rule process_tokens
{
    meta:
        behaviour = "process-call"
        severity = "info"
        confidence = "low"
        description = "mentions a process-starting, exec or thread API (pre-filter for the import-time check)"
    strings:
        $a = "subprocess"
        $b = "os.system"
        $c = "os.popen"
        $d = "exec("
        $e = "eval("
        $f = "Thread("
        $g = "os.exec"
        $h = "__import__("
        $i = "ctypes"
        $j = "Popen("
    condition:
        is_python and any of them
}

rule dropper
{
    meta:
        behaviour = "write-chmod-exec"
        severity = "high"
        confidence = "low"
        description = "makes a file in a temporary directory executable and starts it"
    strings:
        $chmod = /(os\.chmod\s*\([^\n]{1,160}(0o?7[0-7]{2}|0o?5[0-7]{2}|S_IEXEC|S_IXUSR|\| *0o?111)|chmod\s+(\+x|[0-7]?7[0-7]{2}))/
        $tmp = /(['"]\/tmp\/|['"]\/var\/tmp\/|['"]\/dev\/shm\/|tempfile\.|gettempdir\s*\(|%TEMP%|APPDATA)/
        $run = /(subprocess\.(Popen|run|call|check_call)|\bPopen|os\.system|os\.popen|os\.exec[lv]p?e?|os\.startfile)\s*\(/
    condition:
        is_python and $chmod and $tmp and $run
}
