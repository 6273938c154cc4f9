// exec/eval of data that was decoded at run time: the shape of a staged payload.

rule exec_decoded_payload
{
    meta:
        behaviour = "exec-decoded"
        severity = "high"
        confidence = "high"
        description = "exec/eval/compile of base64, zlib, marshal, hex or chr-joined data"
    strings:
        $direct = /\b(exec|eval)\s*\(\s*(compile\s*\(\s*)?([A-Za-z_][A-Za-z0-9_]*\.)*(b64decode|b32decode|b85decode|a85decode|urlsafe_b64decode|decodebytes|decompress|fromhex|unhexlify)\s*\(/
        $marshal = /\b(exec|eval)\s*\(\s*marshal\.loads\s*\(/
        $chrjoin = /\b(exec|eval)\s*\(\s*(""|'')\.join\s*\(\s*(\[\s*)?chr\s*\(/
        $chrjoin2 = /\b(exec|eval)\s*\(\s*(""|'')\.join\s*\(\s*map\s*\(\s*chr/
        $rot = /\b(exec|eval)\s*\(\s*codecs\.decode\s*\(/
        $import_b64 = /__import__\s*\(\s*['"](base64|zlib|marshal)['"]\s*\)\.(b64decode|decompress|loads)/
        $builtin = /getattr\s*\(\s*__builtins__\s*,\s*['"](exec|eval)['"]\s*\)/
    condition:
        is_python and any of them
}

rule decoded_exec_indirect
{
    meta:
        behaviour = "exec-dynamic"
        severity = "medium"
        confidence = "low"
        description = "decodes base64/zlib/marshal data and calls exec in the same file"
    strings:
        $dec = /\b(base64\.b64decode|zlib\.decompress|marshal\.loads|bytes\.fromhex|codecs\.decode)\s*\(/
        $exec = /\bexec\s*\(/
    condition:
        is_python and $dec and $exec
}
