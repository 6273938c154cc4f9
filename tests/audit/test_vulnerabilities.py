"""Vulnerabilities from an offline OSV advisory directory the test writes, through pip-audit's interface."""

from __future__ import annotations

import pytest
import requests
from packaging.version import Version
from pip_audit._service import ResolvedDependency
from sqlalchemy import select

from mirror.db.models import FindingRow, PinnedFile, Release, Vulnerability
from mirror.audit.settings import AuditSettings
from mirror.config import SettingsError
from mirror.audit.vulns import OfflineAdvisories, in_ranges
from tests.audit.support import audit, versions, write_advisory
from tests.review.support import Api, make_token
from tests.support.publish import publish


def test_ranges_follow_osv_event_semantics() -> None:
    ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.4"}, {"introduced": "2.0"},
                                                {"last_affected": "2.1"}]}]
    hits = {v: in_ranges(Version(v), ranges) for v in ("0.9", "1.0", "1.3.9", "1.4", "1.9", "2.0", "2.1", "2.1.1")}
    assert hits == {"0.9": False, "1.0": True, "1.3.9": True, "1.4": False, "1.9": False,
                    "2.0": True, "2.1": True, "2.1.1": False}
    assert not in_ranges(Version("1.0"), [{"type": "GIT", "events": [{"introduced": "0"}]}])


def test_offline_service_matches_names_versions_and_skips_bad_files(tmp_path) -> None:
    write_advisory(tmp_path, "PYSEC-2024-1", "Calm_Badger", fixed="2.0", aliases=("CVE-2024-1",))
    write_advisory(tmp_path, "GHSA-aaaa", "other", versions=("0.5",), introduced="9")
    (tmp_path / "broken.json").write_text("{not json")
    service = OfflineAdvisories(tmp_path)
    _, found = service.query(ResolvedDependency(name="calm.badger", version=Version("1.5")))
    assert [(r.id, r.aliases, r.fix_versions, r.severity) for r in found] == [
        ("PYSEC-2024-1", {"CVE-2024-1"}, [Version("2.0")], "high")]
    assert service.query(ResolvedDependency(name="calm-badger", version=Version("2.0")))[1] == []
    assert [r.id for r in service.query(ResolvedDependency(name="other", version=Version("0.5")))[1]] == ["GHSA-aaaa"]
    assert service.skipped and "broken.json" in service.skipped[0]


def test_bad_action_policy_names_the_key() -> None:
    for action, key in (({"severe": "hide"}, "audit.vulnerable_action.severe"),
                        ({"high": "explode"}, "audit.vulnerable_action.high"),
                        ("explode", "audit.vulnerable_action"), (3, "audit.vulnerable_action")):
        with pytest.raises(SettingsError) as caught:
            AuditSettings.from_mapping({"vulnerable_action": action})
        assert caught.value.key == key
    table = {"critical": "block", "*": "annotate"}
    assert AuditSettings.from_mapping({"vulnerable_action": table}).vulnerable_action == table
    assert AuditSettings.from_mapping({"vulnerable_action": "hide"}).vulnerable_action == {"*": "hide"}


@pytest.mark.parametrize("action, state", [("hide", "held"), ("block", "denied")])
def test_vulnerable_release_is_hidden_or_blocked(start_mirror, index_server, tmp_path, action, state) -> None:
    advisories = tmp_path / "advisories"
    write_advisory(advisories, "PYSEC-2024-7", "calm-badger", fixed="2.0", severity="HIGH")
    old = publish(index_server, tmp_path, "calm-badger", "1.0")[0]
    publish(index_server, tmp_path, "calm-badger", "2.0")
    mirror = start_mirror(audit={"advisory_dir": str(advisories), "vulnerability_service": "none",
                                 "vulnerable_action": action})
    assert versions(mirror, "calm-badger") == ["1.0", "2.0"]
    summary = audit(mirror)
    assert summary.new_vulnerabilities == 1
    assert versions(mirror, "calm-badger") == ["2.0"]
    with mirror.services.sessions() as session:
        vuln = session.scalars(select(Vulnerability)).one()
        release = session.scalars(select(Release).where(Release.version == "1.0")).one()
        pin = session.scalars(select(PinnedFile).where(PinnedFile.filename == old.filename)).one()
    assert (vuln.project, vuln.version, vuln.vuln_id, vuln.fix_versions, vuln.severity) == (
        "calm-badger", "1.0", "PYSEC-2024-7", ["2.0"], "high")
    assert release.state == state and release.decided_by == "audit"
    refused = requests.get(f"{mirror.url}files/{pin.sha256}/{pin.filename}", timeout=30)
    assert refused.status_code == 403 and "PYSEC-2024-7" in refused.text
    # In the API too.
    api = Api(mirror, make_token(mirror, "reviewer", "rita"))
    listed = api.get("vulnerabilities").json()["vulnerabilities"]
    assert [(v["project"], v["version"], v["id"]) for v in listed] == [("calm-badger", "1.0", "PYSEC-2024-7")]
    # The advisory is withdrawn: the vulnerability resolves and the release comes back.
    (advisories / "PYSEC-2024-7.json").unlink()
    cleared = audit(mirror)
    assert cleared.resolved_findings >= 1
    assert versions(mirror, "calm-badger") == ["1.0", "2.0"]
    assert api.get("vulnerabilities").json()["vulnerabilities"] == []


def test_annotate_only_records_a_finding(start_mirror, index_server, tmp_path) -> None:
    advisories = tmp_path / "advisories"
    write_advisory(advisories, "GHSA-xxxx-yyyy", "calm-badger", versions=("1.0",), introduced="5", severity="CRITICAL")
    publish(index_server, tmp_path, "calm-badger", "1.0")
    mirror = start_mirror(audit={"advisory_dir": str(advisories), "vulnerability_service": "none"})
    assert versions(mirror, "calm-badger") == ["1.0"]
    summary = audit(mirror)
    assert summary.new_critical == 1 and "GHSA-xxxx-yyyy" in summary.critical[0]
    assert versions(mirror, "calm-badger") == ["1.0"]
    with mirror.services.sessions() as session:
        finding = session.scalars(select(FindingRow).where(FindingRow.detector == "vulnerability")).one()
    assert (finding.version, finding.severity, finding.target) == ("1.0", "critical", "GHSA-xxxx-yyyy")
    assert audit(mirror).new_critical == 0  # known now: not new again
