// What a file is, by its bytes (the scanner adds where it sits and what the wheel is).

rule elf_executable
{
    meta:
        behaviour = "native-elf"
        severity = "info"
        confidence = "high"
        description = "an ELF binary"
    condition:
        uint32(0) == 0x464c457f
}

rule pe_executable
{
    meta:
        behaviour = "native-pe"
        severity = "info"
        confidence = "high"
        description = "a Windows PE binary"
    condition:
        uint16(0) == 0x5a4d and uint32(0x3c) < 0x1000 and uint32(uint32(0x3c)) == 0x00004550
}

rule macho_executable
{
    meta:
        behaviour = "native-macho"
        severity = "info"
        confidence = "high"
        description = "a Mach-O binary"
    condition:
        uint32(0) == 0xfeedface or uint32(0) == 0xfeedfacf or uint32(0) == 0xcefaedfe or
        uint32(0) == 0xcffaedfe or uint32be(0) == 0xcafebabe
}

rule shell_script
{
    meta:
        behaviour = "shell-script"
        severity = "info"
        confidence = "high"
        description = "a shell script"
    strings:
        $shebang = /^#!\s*\/(usr\/)?(local\/)?bin\/(env\s+)?(ba|z|da|k)?sh\b/
    condition:
        $shebang or ext == "sh"
}

rule javascript_file
{
    meta:
        behaviour = "javascript"
        severity = "info"
        confidence = "high"
        description = "a JavaScript file"
    strings:
        $node = /^#!\s*\/usr\/bin\/env\s+(node|bun|deno)/
    condition:
        $node or ext == "js" or ext == "mjs" or ext == "cjs"
}
