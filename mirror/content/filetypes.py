"""Files that do not belong where they are, judged by their bytes and their place.

A pure-Python wheel has no reason to carry an ELF, PE or Mach-O executable,
a shell script or a JavaScript bundle; a hidden folder inside a package is
where a dropper hides; a large blob that looks random and is no known format
is a packed payload; and a WAV or PNG with bytes after its declared end is a
carrier (the telnyx case).  The YARA rules say *what* a file is; this module
adds *where* and *whether that fits*, as further ``Behaviour`` values.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Sequence

from mirror.content.evidence import excerpt
from mirror.content.rules import Behaviour

__all__ = ["appended_media_bytes", "entropy", "placement_behaviours"]

_NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")
_KNOWN_COMPRESSED = (
    b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd", b"7z\xbc\xaf", b"\x89PNG", b"\xff\xd8\xff",
    b"GIF8", b"RIFF", b"OggS", b"fLaC", b"ID3", b"%PDF", b"\x00\x00\x00", b"\x93NUMPY", b"\x7fELF", b"MZ",
    b"\x04\x22\x4d\x18", b"wOFF", b"wOF2", b"\x00\x01\x00\x00", b"OTTO", b"ttcf", b"SQLite format 3", b"\x80",
)


def entropy(data: bytes, sample: int = 1 << 18) -> float:
    """Shannon entropy in bits per byte of a sample (start and middle) of ``data``."""
    if not data:
        return 0.0
    if len(data) > 2 * sample:
        middle = len(data) // 2
        data = data[:sample] + data[middle : middle + sample]
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in Counter(data).values())


def appended_media_bytes(data: bytes) -> tuple[str, int] | None:
    """(format, bytes after the declared end) for PNG, RIFF (WAV/AVI/WEBP) and BMP; None if not media."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        pos = 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            kind = data[pos + 4 : pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                return "png", max(0, len(data) - pos)
        return "png", 0
    if data.startswith(b"RIFF") and len(data) >= 12:
        (size,) = struct.unpack("<I", data[4:8])
        fmt = data[8:12].decode("latin-1").strip().lower() or "riff"
        return fmt, max(0, len(data) - (size + 8))
    if data.startswith(b"BM") and len(data) >= 14:
        (size,) = struct.unpack("<I", data[2:6])
        if 14 < size <= len(data):
            return "bmp", len(data) - size
    return None


def _b(behaviour: str, rule: str, severity: str, confidence: str, description: str, data: bytes, offset: int = 0) -> Behaviour:
    return Behaviour(behaviour, rule, severity, confidence, description, offset, excerpt(data, offset, 80))


def placement_behaviours(
    path: str, data: bytes, found: Sequence[Behaviour], *, pure: bool, is_wheel: bool,
    entropy_min_bytes: int, entropy_threshold: float,
) -> list[Behaviour]:
    """Behaviours that depend on where a file sits and what the distribution is."""
    kinds = {b.behaviour for b in found}
    name = path.rsplit("/", 1)[-1]
    lower = name.lower()
    out: list[Behaviour] = []
    native = kinds & {"native-elf", "native-pe", "native-macho"}
    if native:
        library = lower.endswith(_NATIVE_SUFFIXES) or ".so." in lower or ".dylib" in lower
        if is_wheel and pure:
            out.append(_b("foreign-binary", "files.binary_in_pure_wheel", "high", "high",
                          "native executable code inside a pure-Python wheel", data))
        elif not library:
            out.append(_b("bundled-executable", "files.bundled_executable", "medium", "low",
                          "a native executable (not a shared library) shipped in the package", data))
    if is_wheel and pure and "shell-script" in kinds:
        out.append(_b("foreign-script", "files.shell_in_pure_wheel", "low", "low",
                      "a shell script inside a pure-Python wheel", data))
    if is_wheel and pure and "javascript" in kinds:
        big = len(data) >= 1 << 20
        out.append(_b("foreign-javascript", "files.js_in_pure_wheel", "medium" if big else "info", "low",
                      f"JavaScript ({len(data)} bytes) inside a pure-Python wheel", data))
    parts = path.split("/")
    hidden = [p for p in parts[:-1] if p.startswith(".") and p not in (".", "..")]
    if hidden and is_wheel:
        risky = bool(native or kinds & {"shell-script", "javascript"}) or lower.endswith((".py", ".pyc"))
        out.append(_b("hidden-path", "files.hidden_folder", "medium" if risky else "low", "low",
                      f"file inside hidden folder {hidden[0]!r}", path.encode()))
    media = appended_media_bytes(data)
    if media and media[1] >= 512:
        fmt, extra = media
        severity = "high" if extra >= 4096 else "medium"
        out.append(_b("media-appended-data", "files.media_appended_data", severity, "high",
                      f"{fmt} file with {extra} bytes after its declared end", data, len(data) - extra))
    if (
        len(data) >= entropy_min_bytes
        and not data.startswith(_KNOWN_COMPRESSED)
        and not native
        and not lower.endswith((".so", ".pyd", ".dll", ".dylib", ".npy", ".npz", ".pt", ".bin", ".onnx", ".safetensors",
                                ".whl", ".zip", ".gz", ".xz", ".zst", ".ttf", ".otf", ".woff", ".woff2", ".jar"))
    ):
        bits = entropy(data)
        if bits > entropy_threshold:
            out.append(_b("high-entropy-blob", "files.high_entropy_blob", "medium", "low",
                          f"{len(data)}-byte blob of no known format with {bits:.2f} bits/byte (looks encrypted or packed)", data))
    return out
