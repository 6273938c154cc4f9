from __future__ import annotations

from datetime import timedelta

from detectors.facts import ProjectFacts, ReleaseFacts, Severity
from detectors.maintainers import MaintainersConfig, detect, detect_release
from tests.detectors.conftest import NOW

CONFIG = MaintainersConfig()


def owners(now: dict | None, before: dict | None, **more) -> list:
    return detect(ProjectFacts(name="p", now=NOW, roles=now, previous_roles=before, **more), CONFIG)


def test_all_owners_replaced_is_high() -> None:
    [finding] = owners({"mallory": "Owner"}, {"alice": "Owner", "bob": "Maintainer"})
    assert finding.severity == Severity.HIGH and "all owners replaced" in finding.title
    assert finding.evidence["removed"] == ["alice", "bob"] and finding.evidence["added"] == ["mallory"]


def test_an_added_owner_is_medium_and_a_removed_one_low() -> None:
    findings = owners({"alice": "Owner", "carol": "Owner"}, {"alice": "Owner", "bob": "Owner"})
    assert sorted((f.title, f.severity) for f in findings) == [
        ("owners added: carol", Severity.MEDIUM),
        ("owners removed: bob", Severity.LOW),
    ]


def test_unchanged_owners_report_nothing_and_user_case_does_not_matter() -> None:
    assert owners({"Alice": "Owner"}, {"alice": "Owner"}) == []


def test_first_sight_is_not_a_change() -> None:
    assert owners({"alice": "Owner"}, None) == []


def test_changed_emails_are_reported() -> None:
    [finding] = owners(None, None, emails=frozenset({"a@new.example"}), previous_emails=frozenset({"a@old.example"}))
    assert finding.evidence == {"added": ["a@new.example"], "removed": ["a@old.example"]}


def test_release_uploaded_after_the_ownership_change_is_held() -> None:
    changed = NOW - timedelta(days=2)
    after = ReleaseFacts("p", "2.0", uploaded_at=NOW - timedelta(days=1), now=NOW, ownership_changed_at=changed)
    before = ReleaseFacts("p", "1.9", uploaded_at=NOW - timedelta(days=3), now=NOW, ownership_changed_at=changed)
    [finding] = detect_release(after, CONFIG)
    assert finding.release == "2.0" and finding.severity == Severity.HIGH
    assert detect_release(before, CONFIG) == []
    assert detect_release(ReleaseFacts("p", "2.0", NOW, NOW), CONFIG) == []
