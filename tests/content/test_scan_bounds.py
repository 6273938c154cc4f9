"""What the rules are given of big and binary members, and that nothing hidden there is lost.

Binaries give the rules only their head (``binary_scan_bytes``), text is
scanned whole up to ``rule_scan_bytes`` and beyond that is a finding.
Every payload only prints; nothing here is run.
"""

from __future__ import annotations

import pytest

from detectors.facts import Severity
from mirror.content import Artifact, ScanConfig, default_rules, load_rules, scan_member

from tests.content.helpers import raw_wheel, scan
from tests.content.test_rules import POSITIVES

RULES = default_rules()
MiB = 1024 * 1024
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 4000
PE = b"MZ" + b"\x00" * 0x3A + (0x80).to_bytes(4, "little") + b"\x00" * 0x40 + b"PE\x00\x00" + b"\x00" * 4000
MACHO = b"\xcf\xfa\xed\xfe" + b"\x00" * 4000
EVERY_PAYLOAD = b"\n".join(POSITIVES.values())


def _behaviours(path: str, data: bytes, config: ScanConfig, pure: bool = False) -> list[dict]:
    return [b.to_dict() for b in scan_member(path, data, kind="wheel", pure=pure, rules=RULES, config=config)]


@pytest.mark.parametrize("header", [ELF, PE, MACHO, b"\x00\x01\x02binary blob\x00" * 100], ids=["elf", "pe", "macho", "blob"])
@pytest.mark.parametrize("name", ["pkg/_native.cpython-311-x86_64-linux-gnu.so", "pkg/bin/helper", "pkg/data.bin"])
def test_a_binary_head_is_all_the_rules_need(header, name):
    """The packaged rules judge a binary by its header: the head-only scan equals the whole scan."""
    data = header + b"\x00" * MiB + EVERY_PAYLOAD + b"\x00" * 1000
    whole = ScanConfig(binary_scan_bytes=64 * MiB)
    assert _behaviours(name, data, ScanConfig()) == _behaviours(name, data, whole)
    assert _behaviours(name, data, ScanConfig(), pure=True) == _behaviours(name, data, whole, pure=True)


def test_the_binary_head_still_names_the_format():
    found = {b["behaviour"] for b in _behaviours("pkg/bin/helper", ELF + b"\x00" * MiB, ScanConfig(binary_scan_bytes=8192))}
    assert {"native-elf", "bundled-executable"} <= found
    found = {b["behaviour"] for b in _behaviours("pkg/tool.exe", PE + b"\x00" * MiB, ScanConfig(binary_scan_bytes=8192))}
    assert "native-pe" in found


def test_text_named_like_a_native_library_is_scanned_whole():
    """A text file is judged by its bytes, not its name: a .so or .pyd full of text gets every text rule."""
    filler = b"# padding line of an innocent looking file\n" * (3 * MiB // 44)
    for name in ("pkg/_speedups.cpython-311-x86_64-linux-gnu.so", "pkg/_speedups.pyd", "pkg/lib.dll"):
        found = {b["behaviour"] for b in _behaviours(name, filler + POSITIVES["crypto-miner"], ScanConfig())}
        assert "crypto-miner" in found, name


def test_payload_deep_in_a_large_text_file_is_found():
    """Text is scanned whole (the rules used to see only its first 2 MiB)."""
    filler = b"# harmless padding comment\n" * (3 * MiB // 27)
    data = filler + POSITIVES["exec-decoded"]
    [found] = [b for b in _behaviours("pkg/big.py", data, ScanConfig()) if b["behaviour"] == "exec-decoded"]
    assert found["offset"] > 2 * MiB


def test_text_beyond_the_rule_limit_is_held_not_passed():
    config = ScanConfig(rule_scan_bytes=64 * 1024)
    data = b"VALUE = 1\n" * 10_000 + POSITIVES["exec-decoded"]
    found = {b["behaviour"]: b for b in _behaviours("pkg/big.py", data, config)}
    assert "exec-decoded" not in found
    assert found["rules-partial"]["severity"] == "high"
    report = scan(Artifact(*raw_wheel("demo", "1.0", {"demo/__init__.py": data}), provenance_known=False), config=config)
    [finding] = [f for f in report.findings if f.detector == "content.rules-partial"]
    assert finding.severity == Severity.HIGH and finding.evidence["file"] == "demo/__init__.py"
    small = scan(Artifact(*raw_wheel("demo", "1.0", {"demo/__init__.py": b"VALUE = 1\n"}), provenance_known=False),
                 config=config)
    assert "content.rules-partial" not in {f.detector for f in small.findings}


def test_rules_are_compiled_on_first_scan_only():
    rules = load_rules()
    assert not rules.compiled and rules.version == RULES.version
    assert "exec-decoded" in {b.behaviour for b in rules.scan("m.py", POSITIVES["exec-decoded"], MiB)}
    assert rules.compiled


def _without_timing(report) -> dict:  # noqa: ANN001
    out = report.to_dict()
    out.pop("seconds")
    return out


def test_big_native_members_are_hashed_not_held_and_judged_the_same():
    """A big native library or executable is read head first and only hashed: same report, a fraction of the memory."""
    import tracemalloc

    big = ELF + bytes(range(256)) * (4 * MiB // 256) + EVERY_PAYLOAD
    files = {
        "demo/_core.cpython-311-x86_64-linux-gnu.so": big,
        "demo.libs/libblas-1a2b.so.0.3": big + b"\x01",
        "demo/bin/helper": big + b"\x02",
        "demo/boot.pth": big + b"\nimport os; os.system('echo harmless')\n",  # a hook reads the whole file
        "demo/static/app.js": big + b"\x03",  # a script is judged by its size
        "demo/__init__.py": b"VALUE = 1\n",
    }
    name, data = raw_wheel("demo", "1.0", files)
    artifact = Artifact(name, data, provenance_known=False)
    tracemalloc.start()
    try:
        streamed = scan(artifact)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = scan(artifact, config=ScanConfig(binary_scan_bytes=64 * MiB))  # every member read whole
    assert _without_timing(streamed) == _without_timing(whole)
    files_seen = streamed.inventory["artifacts"][0]["files"]
    assert files_seen["demo/_core.cpython-311-x86_64-linux-gnu.so"]["size"] == len(big)
    assert "foreign-binary" in {b["behaviour"] for b in files_seen["demo/bin/helper"]["behaviours"]}
    assert peak < 3 * len(big)  # the walk holds the archive (bytes source) and the big members it must read whole


def test_scanning_a_big_native_library_holds_about_a_mib(tmp_path):
    import tracemalloc

    big = ELF + bytes(range(256)) * (32 * MiB // 256)
    name, data = raw_wheel("demo", "1.0", {"demo/_core.so": big, "demo/__init__.py": b"VALUE = 1\n"})
    path = tmp_path / name
    path.write_bytes(data)
    del data
    tracemalloc.start()
    try:
        report = scan(Artifact(name, path, provenance_known=False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.complete and peak < 8 * MiB
