from __future__ import annotations

from datetime import timedelta

import pytest

from detectors.downloads import DownloadsConfig, DownloadStatsProvider, SnapshotStatsProvider, detect
from detectors.facts import DownloadStats, Finding, ProjectFacts, Severity
from tests.detectors.conftest import NOW

RESEMBLES = [Finding("typosquat", Severity.MEDIUM, "one transposition from 'requests'", "requests")]


def facts(stats: DownloadStats | None, age_days: float | None = None) -> ProjectFacts:
    first = None if age_days is None else NOW - timedelta(days=age_days)
    return ProjectFacts(name="reqeusts", now=NOW, downloads=stats, first_upload=first)


def test_look_alike_with_few_downloads_is_reported() -> None:
    [finding] = detect(facts(DownloadStats(last_month=12)), DownloadsConfig(), RESEMBLES)
    assert finding.target == "requests" and finding.evidence["last_month"] == 12


def test_unknown_downloads_are_never_read_as_zero() -> None:
    assert detect(facts(None), DownloadsConfig(), RESEMBLES) == []
    assert detect(facts(DownloadStats(last_day=3)), DownloadsConfig(), RESEMBLES) == []


def test_look_alike_with_real_users_or_no_resemblance_is_not_reported() -> None:
    assert detect(facts(DownloadStats(last_month=50_000)), DownloadsConfig(), RESEMBLES) == []
    assert detect(facts(DownloadStats(last_month=12)), DownloadsConfig(), []) == []


def test_rapid_adoption_of_a_young_project_is_reported() -> None:
    [finding] = detect(facts(DownloadStats(last_day=20_000), age_days=3), DownloadsConfig())
    assert "rapid adoption" in finding.title and finding.evidence["age_days"] == 3.0


def test_busy_old_project_is_no_spike() -> None:
    assert detect(facts(DownloadStats(last_day=20_000), age_days=300), DownloadsConfig()) == []
    assert detect(facts(DownloadStats(last_day=100), age_days=3), DownloadsConfig()) == []


def test_download_counts_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="last_day"):
        DownloadStats(last_day=-1)


def test_snapshot_provider_knows_only_the_listed_projects(corpus) -> None:
    provider = SnapshotStatsProvider(corpus)
    assert isinstance(provider, DownloadStatsProvider)
    assert provider.stats("requests") == DownloadStats(last_month=1_100_000_000)
    assert provider.stats("not-listed-anywhere") is None
    assert provider.stats("torch") is None  # curated, no count: unknown
