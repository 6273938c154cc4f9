"""Structure: RECORD, paths, links and core metadata against the file name."""

from __future__ import annotations

from detectors.facts import Severity
from mirror.content import Artifact, scan_release

from tests.content.helpers import detectors, raw_sdist, raw_wheel, record_line, sdist, wheel


def _scan(name: str, data: bytes):
    return scan_release([Artifact(name, data, provenance_known=False)], None)


def _by(report, detector):
    return [f for f in report.findings if f.detector == detector]


def test_real_wheel_and_sdist_have_clean_structure(tmp_path):
    report = scan_release([wheel(tmp_path, "clean-pkg", "1.0"), sdist(tmp_path, "clean-pkg", "1.0")], None)
    assert report.findings == ()
    assert report.complete


def test_file_with_wrong_record_hash_is_critical():
    name, data = raw_wheel(record_extra=[], files={"demo/__init__.py": b"VALUE = 1\n"})
    # Rebuild with a RECORD line for different bytes.
    name, data = raw_wheel(files={"demo/__init__.py": b"VALUE = 1\n"}, unlisted=["demo/__init__.py"],
                           record_extra=[record_line("demo/__init__.py", b"VALUE = 2\n")])
    [found] = _by(_scan(name, data), "content.record")
    assert found.severity == Severity.CRITICAL
    assert found.evidence["file"] == "demo/__init__.py"
    assert "does not match" in found.title


def test_file_missing_from_record_and_record_listing_absent_file():
    name, data = raw_wheel(files={"demo/__init__.py": b"A = 1\n", "demo/extra.py": b"B = 2\n"},
                           unlisted=["demo/extra.py"], record_extra=["demo/ghost.py,sha256=abc,3"])
    titles = {(f.evidence["file"], f.title) for f in _by(_scan(name, data), "content.record")}
    assert ("demo/extra.py", "file is not listed in RECORD") in titles
    assert ("demo/ghost.py", "RECORD lists a file the wheel does not contain") in titles


def test_duplicate_member_names():
    name, data = raw_wheel(extra_members=[("demo/__init__.py", b"EVIL = 1\n")])
    found = _by(_scan(name, data), "content.duplicate-member")
    assert found and found[0].severity == Severity.CRITICAL and found[0].evidence["file"] == "demo/__init__.py"


def test_dotdot_and_absolute_paths_are_critical():
    name, data = raw_wheel(extra_members=[("../evil.py", b"x"), ("/etc/evil.py", b"y"), ("demo\\..\\..\\win.py", b"z")])
    files = {f.evidence["file"] for f in _by(_scan(name, data), "content.unsafe-path")}
    assert {"../evil.py", "/etc/evil.py", "demo\\..\\..\\win.py"} <= files


def test_symlink_in_wheel_is_critical():
    name, data = raw_wheel(symlinks={"demo/link": "/etc/passwd"})
    [found] = _by(_scan(name, data), "content.link")
    assert found.severity == Severity.CRITICAL and found.evidence["file"] == "demo/link"


def test_metadata_name_and_version_must_match_the_file_name():
    name, data = raw_wheel(metadata_name="other-project", metadata_version="9.9")
    found = _scan(name, data)
    assert {"content.metadata-name", "content.metadata-version"} <= detectors(found)


def test_metadata_comparison_uses_canonical_forms():
    # "Demo_Pkg" in METADATA and "demo_pkg" in the file name are the same project; 1.0 == 1.0.0.
    name, data = raw_wheel(name="demo_pkg", version="1.0", metadata_name="Demo.Pkg", metadata_version="1.0.0")
    assert not {"content.metadata-name", "content.metadata-version"} & detectors(_scan(name, data))


def test_sdist_path_rules():
    name, data = raw_sdist(
        files={"demo-1.0/demo/__init__.py": b"A = 1\n", "demo-1.0/../../escape.py": b"x"},
        symlinks={"demo-1.0/docs/link": "../../../../etc/passwd", "demo-1.0/docs/ok": "../README"},
    )
    report = _scan(name, data)
    assert [f.evidence["file"] for f in _by(report, "content.unsafe-path")] == ["demo-1.0/../../escape.py"]
    assert [f.evidence["file"] for f in _by(report, "content.link")] == ["demo-1.0/docs/link"]


def test_sdist_pkg_info_must_match():
    name, data = raw_sdist(files={"demo-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n\n"})
    assert "content.metadata-version" in detectors(_scan(name, data))
