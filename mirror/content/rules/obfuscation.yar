// Code written so that a reader cannot see what it does.

rule obfuscated_javascript
{
    meta:
        behaviour = "obfuscated-js"
        severity = "high"
        confidence = "high"
        description = "JavaScript run through an obfuscator (_0x identifiers, string-array rotation)"
    strings:
        $hexid = /_0x[0-9a-f]{4,6}/
        $rot = /\['push'\]\(_0x[0-9a-f]{4,6}\['shift'\]\(\)\)/
        $rot2 = /\.push\(_0x[0-9a-f]{4,6}\.shift\(\)\)/
    condition:
        is_text and (#hexid > 200 or any of ($rot*))
}

rule obfuscated_python
{
    meta:
        behaviour = "obfuscated-python"
        severity = "medium"
        confidence = "low"
        description = "Python packed into long encoded literals, dense hex escapes or __import__ chains"
    strings:
        $b64 = /['"][A-Za-z0-9+\/]{3000}/
        $hex = /(\\x[0-9a-fA-F]{2}){400}/
        $imp = /__import__\s*\(\s*['"][a-z0-9_]+['"]\s*\)\s*\.\s*[a-z_]+\s*\(\s*__import__/
        $pyarmor = "__pyarmor__"
        $lambda = /(lambda\s+[A-Za-z_]{1,3}\s*:\s*){6}/
    condition:
        is_python and any of them
}
