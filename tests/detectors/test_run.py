from __future__ import annotations

import json
from datetime import timedelta

import pytest

from detectors import DetectorConfig, ProjectFacts, ReleaseFacts, Severity, run_all, run_name_detectors
from detectors import run_release_detectors
from detectors.facts import DownloadStats
from detectors.names import InvalidName
from tests.detectors.conftest import NOW


def test_name_detectors_combine_confusion_and_typosquat_most_severe_first(corpus, internal) -> None:
    findings = run_name_detectors(ProjectFacts(name="acmeauth", now=NOW, corpus=corpus, internal=internal))
    assert [f.detector for f in findings][0] == "confusion"
    assert all(a.severity >= b.severity for a, b in zip(findings, findings[1:]))


def test_run_all_adds_upstream_detectors(corpus) -> None:
    facts = ProjectFacts(
        name="reqeusts",
        now=NOW,
        corpus=corpus,
        first_upload=NOW - timedelta(days=1),
        roles={"mallory": "Owner"},
        previous_roles={"alice": "Owner"},
        downloads=DownloadStats(last_month=3),
    )
    detectors = {f.detector for f in run_all(facts)}
    assert detectors == {"typosquat", "age", "maintainers", "downloads"}


def test_findings_are_json_serialisable(corpus, internal) -> None:
    facts = ProjectFacts(name="acme-billing-servise", now=NOW, corpus=corpus, internal=internal)
    text = json.dumps([f.to_dict() for f in run_all(facts)])
    assert "critical" in text


def test_release_detectors_hold_young_releases() -> None:
    release = ReleaseFacts("p", "3.0", uploaded_at=NOW - timedelta(hours=1), now=NOW)
    [finding] = run_release_detectors(release)
    assert finding.release == "3.0" and finding.detector == "age"


def test_invalid_name_raises_a_clear_error(corpus) -> None:
    with pytest.raises(InvalidName):
        run_name_detectors(ProjectFacts(name="not valid", now=NOW, corpus=corpus))


def test_config_from_mapping_names_the_bad_key() -> None:
    config = DetectorConfig.from_mapping({"typosquat_threshold": 0.7, "young_project_days": 7})
    assert config.typosquat.threshold == 0.7 and config.age.young_project == timedelta(days=7)
    for table, key in [
        ({"typo_threshold": 1}, "detectors.typo_threshold"),
        ({"typosquat_threshold": 2}, "detectors.typosquat_threshold"),
        ({"few_downloads": "many"}, "detectors.few_downloads"),
        ({"popular_file": "/no/such/file.csv"}, "detectors.popular_file"),
        ({"allowlist": ["only-one-name"]}, "detectors.allowlist"),
    ]:
        with pytest.raises(ValueError, match=key):
            DetectorConfig.from_mapping(table)


def test_severity_parses_and_orders() -> None:
    assert Severity.parse("High") == Severity.HIGH > Severity.MEDIUM
    with pytest.raises(ValueError, match="expected one of"):
        Severity.parse("extreme")
