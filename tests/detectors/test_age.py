from __future__ import annotations

from datetime import timedelta

import pytest

from detectors.age import AgeConfig, detect, detect_release
from detectors.facts import ProjectFacts, ReleaseFacts
from tests.detectors.conftest import NOW


def test_young_project_is_reported_with_its_age() -> None:
    [finding] = detect(ProjectFacts(name="p", now=NOW, first_upload=NOW - timedelta(hours=5)), AgeConfig())
    assert finding.detector == "age" and "5 hours" in finding.title and finding.release is None


def test_old_or_unknown_project_is_not() -> None:
    assert detect(ProjectFacts(name="p", now=NOW, first_upload=NOW - timedelta(days=31)), AgeConfig()) == []
    assert detect(ProjectFacts(name="p", now=NOW), AgeConfig()) == []


def test_release_in_cooldown_is_a_release_hold_not_a_project_one() -> None:
    release = ReleaseFacts("p", "1.1", uploaded_at=NOW - timedelta(hours=10), now=NOW)
    [finding] = detect_release(release, AgeConfig())
    assert finding.release == "1.1"
    assert finding.evidence["held_until"] == (NOW + timedelta(hours=62)).isoformat()


def test_release_past_the_cooldown_is_not_held() -> None:
    release = ReleaseFacts("p", "1.0", uploaded_at=NOW - timedelta(hours=72), now=NOW)
    assert detect_release(release, AgeConfig()) == []
    assert detect_release(release, AgeConfig(cooldown=timedelta(hours=100)))


def test_negative_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError):
        AgeConfig(cooldown=timedelta(hours=-1))
