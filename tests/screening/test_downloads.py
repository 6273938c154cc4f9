"""The downloads detector runs in the server, from the popularity snapshot (issue 12, item 20)."""

from __future__ import annotations


import pytest
import requests
from sqlalchemy import select

from mirror.config import SettingsError, settings_from_mapping
from mirror.db.models import FindingRow
from mirror.screening.detector_setup import DetectorSetup
from mirror.screening.downloads import ServiceStatsProvider, downloads_provider, recent_downloads
from tests.support.publish import publish

# A snapshot in which the look-alike has its own (tiny) monthly count.
SNAPSHOT = "project,download_count\nrequests,900000000\nnumpy,500000000\nreqeusts,12\n"


def test_the_provider_reads_monthly_counts_from_the_snapshot_and_knows_nothing_else(tmp_path) -> None:
    csv = tmp_path / "popular.csv"
    csv.write_text(SNAPSHOT)
    settings = settings_from_mapping({"detectors": {"popular_file": str(csv)}})
    stats = downloads_provider(DetectorSetup.from_settings(settings), settings)
    assert stats("reqeusts").last_month == 12
    assert stats("Reqeusts").last_month == 12
    assert stats("never-heard-of-it") is None  # unknown, not zero


def test_a_look_alike_with_few_downloads_gets_a_downloads_finding_through_the_server(
    start_mirror, index_server, tmp_path
) -> None:
    csv = tmp_path / "popular.csv"
    csv.write_text(SNAPSHOT)
    publish(index_server, tmp_path, "reqeusts", "1.0")
    mirror = start_mirror(detectors={"popular_file": str(csv)})
    response = requests.get(mirror.simple_url + "reqeusts/", timeout=30)
    assert response.status_code == 403
    assert "only 12 downloads last month" in response.text
    with mirror.services.sessions() as session:
        findings = list(session.scalars(select(FindingRow).where(FindingRow.project == "reqeusts")))
    downloads = [f for f in findings if f.detector == "downloads"]
    assert downloads and downloads[0].evidence["last_month"] == 12
    assert downloads[0].target == "requests"
    assert index_server.count_requests("/api/packages/") == 0  # the snapshot asks nobody


def test_a_configured_statistics_service_gives_the_counts(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "reqeusts", "1.0")
    index_server.set_downloads("reqeusts", last_day=1, last_week=3, last_month=7)
    service = index_server.url.rstrip("/") + "/api/packages/{project}/recent"
    mirror = start_mirror(downloads={"service_url": service})
    response = requests.get(mirror.simple_url + "reqeusts/", timeout=30)
    assert response.status_code == 403 and "only 7 downloads last month" in response.text
    assert index_server.count_requests("/api/packages/reqeusts/recent") == 1


def test_a_statistics_service_that_fails_or_knows_nothing_means_unknown(tmp_path, index_server) -> None:
    provider = ServiceStatsProvider(index_server.url.rstrip("/") + "/api/packages/{project}/recent", timeout=5)
    assert provider.stats("never-published") is None
    with index_server.fault("/api/packages/", "status", status=500):
        assert provider.stats("reqeusts") is None
    assert recent_downloads({"data": {"last_month": -1}}) is None
    assert recent_downloads({"data": {"last_month": 5}}).last_month == 5
    with pytest.raises(SettingsError, match="downloads.service_url"):
        settings_from_mapping({"downloads": {"service_url": "https://stats.example/recent"}})

