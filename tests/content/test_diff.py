"""Diff against the last approved release: new high-risk behaviour is a finding, old behaviour is context."""

from __future__ import annotations

import json

from detectors.facts import Severity
from mirror.content import scan_release

from tests.content.helpers import detectors, wheel

SPAWN = b"import subprocess\ndef run(p):\n    subprocess.Popen([p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
STAGE = b"import base64\ndef go():\n    exec(base64.b64decode('cHJpbnQoImhhcm1sZXNzIik='))\n"
CLEAN = b"def helper():\n    return 1\n"


def _pair(tmp_path, old_files, new_files):
    old = scan_release([wheel(tmp_path, "demo", "1.0", files=old_files)], None)
    new = scan_release([wheel(tmp_path, "demo", "1.1", files=new_files)], old.inventory)
    return old, new


def test_new_high_risk_behaviour_is_a_finding_naming_the_file(tmp_path):
    _, new = _pair(tmp_path, {"demo/proxy.py": CLEAN}, {"demo/proxy.py": STAGE})
    [found] = [f for f in new.findings if f.detector == "content.exec-decoded"]
    assert found.severity == Severity.HIGH
    assert found.evidence["file"] == "demo/proxy.py"
    assert found.evidence["new_since"] == "1.0" and "new since 1.0" in found.title
    assert found.evidence["rule"] == "decode_exec.exec_decoded_payload"
    assert found.evidence["risk"] == {"before": "info", "after": "high"}
    assert found.release == "1.1"


def test_behaviour_already_present_is_context_not_finding(tmp_path):
    _, new = _pair(tmp_path, {"demo/proxy.py": STAGE}, {"demo/proxy.py": STAGE + b"\n# changed\n"})
    assert "content.exec-decoded" not in detectors(new)
    assert any(c["behaviour"] == "exec-decoded" and "already present" in c["why"] for c in new.context)


def test_moved_code_counts_one_step_lower(tmp_path):
    _, new = _pair(tmp_path, {"demo/a.py": STAGE}, {"demo/b.py": STAGE + b"# moved\n"})
    [found] = [f for f in new.findings if f.detector == "content.exec-decoded"]
    assert found.severity == Severity.MEDIUM and "another file" in found.evidence["note"]


def test_rename_is_matched_by_content_hash(tmp_path):
    _, new = _pair(tmp_path, {"demo/old_name.py": STAGE}, {"demo/new_name.py": STAGE})
    assert "content.exec-decoded" not in detectors(new)


def test_unchanged_files_are_not_rescanned(tmp_path):
    files = {f"demo/m{i}.py": CLEAN + bytes(str(i), "ascii") for i in range(10)}
    old, new = _pair(tmp_path, files, {**files, "demo/m0.py": SPAWN})
    [artifact] = new.artifacts
    assert artifact.files_scanned == 4  # the changed module, METADATA, WHEEL and RECORD of the new version
    assert artifact.files_reused == 10
    assert new.scanned_bytes < old.scanned_bytes


def test_first_release_uses_only_high_confidence_rules(tmp_path):
    report = scan_release([wheel(tmp_path, "demo", "1.0", files={"demo/run.py": SPAWN, "demo/proxy.py": STAGE})], None)
    assert "content.silent-process-spawn" not in detectors(report)
    assert "content.exec-decoded" in detectors(report)
    assert any(c["behaviour"] == "silent-process-spawn" for c in report.context)


def test_low_confidence_behaviour_new_on_upgrade_is_reported(tmp_path):
    _, new = _pair(tmp_path, {"demo/run.py": CLEAN}, {"demo/run.py": SPAWN})
    assert "content.silent-process-spawn" in detectors(new)


def test_inventory_and_report_are_json(tmp_path):
    _, new = _pair(tmp_path, {"demo/proxy.py": CLEAN}, {"demo/proxy.py": STAGE})
    text = json.dumps(new.to_dict())
    back = json.loads(text)
    assert back["ruleset_version"] == new.ruleset_version == new.inventory["ruleset"]
    assert back["inventory"]["artifacts"][0]["files"]["demo/proxy.py"]["risk"] == "high"
    # The stored inventory works as the next baseline after a JSON round trip.
    again = scan_release([wheel(tmp_path / "x", "demo", "1.2", files={"demo/proxy.py": STAGE})], back["inventory"])
    assert "content.exec-decoded" not in detectors(again)


def test_wheel_is_compared_with_wheel_and_sdist_with_sdist(tmp_path):
    from tests.content.helpers import sdist

    old = scan_release([wheel(tmp_path, "demo", "1.0", files={"demo/proxy.py": STAGE})], None)
    new = scan_release([sdist(tmp_path, "demo", "1.1", files={"demo/proxy.py": STAGE})], old.inventory)
    # No previous sdist: the sdist is judged on its own, so the (high-confidence) behaviour is a finding.
    assert "content.exec-decoded" in detectors(new)


def test_rules_change_rescans_unchanged_files(tmp_path):
    old = scan_release([wheel(tmp_path, "demo", "1.0", files={"demo/proxy.py": STAGE})], None)
    stale = json.loads(json.dumps(old.inventory))
    stale["ruleset"] = "older-rules"
    for record in stale["artifacts"][0]["files"].values():
        record["behaviours"] = []
    new = scan_release([wheel(tmp_path, "demo", "1.1", files={"demo/proxy.py": STAGE})], stale)
    assert new.artifacts[0].files_reused == 0
    assert "content.exec-decoded" in detectors(new)


def test_finding_lists_what_was_already_present_in_the_file(tmp_path):
    _, new = _pair(tmp_path, {"demo/run.py": SPAWN}, {"demo/run.py": SPAWN + STAGE})
    [found] = [f for f in new.findings if f.detector == "content.exec-decoded"]
    assert "silent-process-spawn" in found.evidence["already_present"]
