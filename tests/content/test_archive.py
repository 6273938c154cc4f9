"""Archive walk: every limit yields a finding of its own, nothing is a silent pass."""

from __future__ import annotations

import io
import zipfile

import pytest
from detectors.facts import Severity
from mirror.content import Artifact, ScanConfig, scan_release
from mirror.content.archive import Budget, ScanIncomplete, iter_members

from tests.content.helpers import raw_sdist, raw_wheel


def _incomplete(report):
    return [f for f in report.findings if f.detector == "content.scan-incomplete"]


def test_member_count_limit_is_a_finding():
    name, data = raw_wheel(files={f"demo/m{i}.py": b"x = 1\n" for i in range(20)})
    report = scan_release([Artifact(name, data, provenance_known=False)], None, ScanConfig(max_members=5))
    [found] = _incomplete(report)
    assert found.severity == Severity.HIGH
    assert found.evidence["reason"] == "member-count"
    assert found.evidence["rule"] == "limit:member-count"
    assert not report.complete and report.inventory["complete"] is False


def test_declared_member_size_limit():
    name, data = raw_wheel(files={"demo/big.bin": b"\0" * 5000})
    report = scan_release([Artifact(name, data, provenance_known=False)], None, ScanConfig(max_member_bytes=4096))
    [found] = _incomplete(report)
    assert found.evidence["reason"] == "member-bytes"
    assert found.evidence["file"] == "demo/big.bin"


def test_total_bytes_counts_bytes_actually_read():
    files = {f"demo/f{i}.txt": bytes([65 + i]) * 3000 for i in range(5)}
    name, data = raw_wheel(files=files)
    report = scan_release([Artifact(name, data, provenance_known=False)], None, ScanConfig(max_total_bytes=10_000))
    assert _incomplete(report)[0].evidence["reason"] == "total-bytes"


def test_zip_bomb_ratio_is_refused_before_inflating():
    name, data = raw_wheel(files={"demo/zeros.bin": b"\0" * (8 << 20)})
    report = scan_release([Artifact(name, data, provenance_known=False)], None, ScanConfig(max_ratio=50))
    found = _incomplete(report)[0]
    assert found.evidence["reason"] == "compression-ratio"
    assert report.scanned_bytes < (1 << 20)


def test_lying_size_header_is_caught_by_counting_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("demo/a.txt", b"A" * 100)
    raw = bytearray(out.getvalue())
    # Shrink the declared size in the central directory (offset 24 of the entry) to 10 bytes.
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    budget = Budget(ScanConfig())
    with pytest.raises(ScanIncomplete) as caught:
        list(iter_members(bytes(raw), "demo-1.0-py3-none-any.whl", budget))
    assert caught.value.reason in ("size-mismatch", "unreadable")


def test_time_budget_uses_the_injected_clock():
    ticks = iter(range(0, 10_000, 50))
    name, data = raw_wheel(files={f"demo/m{i}.py": b"x = 1\n" for i in range(10)})
    report = scan_release([Artifact(name, data, provenance_known=False)], None, ScanConfig(max_seconds=100),
                          clock=lambda: float(next(ticks)))
    assert _incomplete(report)[0].evidence["reason"] == "time"


@pytest.mark.parametrize("filename", ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", "demo-1.0.zip"])
def test_unreadable_archive_is_a_finding(filename):
    report = scan_release([Artifact(filename, b"this is not an archive", provenance_known=False)], None)
    [found] = _incomplete(report)
    assert found.evidence["reason"] == "unreadable"
    assert found.severity >= Severity.HIGH


def test_truncated_tar_is_a_finding():
    name, data = raw_sdist(files={"demo-1.0/demo/data.txt": b"x" * 50_000})
    report = scan_release([Artifact(name, data[: len(data) // 2], provenance_known=False)], None)
    assert _incomplete(report)[0].evidence["reason"] == "unreadable"


def test_members_are_read_in_memory_with_their_bytes():
    name, data = raw_sdist(files={"demo-1.0/demo/__init__.py": b"VALUE = 2\n"})
    members = list(iter_members(data, name, Budget(ScanConfig())))
    assert [m.entry.path for m in members] == ["demo-1.0/PKG-INFO", "demo-1.0/demo/__init__.py"]
    assert members[1].data == b"VALUE = 2\n"


def test_config_rejects_nonsense_limits():
    with pytest.raises(ValueError, match="max_members"):
        ScanConfig(max_members=0)


def _stored_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return out.getvalue()


def test_a_big_member_comes_as_head_and_rest_and_is_checked_even_if_the_rest_is_ignored():
    body = bytes(range(256)) * 4096  # 1 MiB
    seen = []
    for member in iter_members(_stored_zip({"demo/big.so": body, "demo/small.py": b"A = 1\n"}),
                               "demo-1.0-py3-none-any.whl", Budget(ScanConfig()), head_bytes=1000):
        seen.append((member.data, member.rest is None, member.data + b"".join(member.rest or ())))
    assert seen == [(body[:1000], False, body), (b"A = 1\n", True, b"A = 1\n")]
    # The stored bytes are damaged after the head: the CRC check runs although nobody reads the rest.
    raw = bytearray(_stored_zip({"demo/big.so": body}))
    raw[raw.find(body[5000:5100]) + 10] ^= 0xFF
    budget = Budget(ScanConfig())
    with pytest.raises(ScanIncomplete) as caught:
        for member in iter_members(bytes(raw), "demo-1.0-py3-none-any.whl", budget, head_bytes=1000):
            assert member.rest is not None  # left unread on purpose
    assert caught.value.reason == "unreadable" and caught.value.path == "demo/big.so"
