"""A look-alike that copies its target's metadata, screened end to end (issue 14, project facts).

Real HTTP to the local upstream, which serves both the target's and the
candidate's project JSON; SQLite always, PostgreSQL when configured.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from mirror.config import SettingsError, settings_from_mapping
from mirror.db.models import FindingRow, Project, Snapshot
from mirror.screening.target_metadata import TargetMetadata
from mirror.states import ALLOWED, DENIED, QUARANTINED
from mirror.upstream.client import UpstreamClient
from mirror.upstream.netguard import NetGuard, url_host_entry
from tests.audit.support import audit
from tests.support.publish import publish

TARGET_SUMMARY = "Python HTTP for Humans."
TARGET_URLS = {"Source": "https://github.com/psf/requests", "Documentation": "https://requests.readthedocs.io"}
YOUNG = timedelta(days=2)
# A site that lets name-only resemblances through and acts on combined evidence only.
NAME_ONLY_ALLOWED = {"actions": {"typosquat.medium": "allow", "typosquat.high": "allow", "age.medium": "allow"}}


def serve_target(index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "requests", "2.32.0", owners={"psf-maint": "Owner"})
    index_server.set_project_info(
        "requests", summary=TARGET_SUMMARY, author="Kenneth Reitz", home_page="https://requests.readthedocs.io",
        project_urls=TARGET_URLS,
    )


def publish_copier(index_server, tmp_path) -> None:
    """A two-day-old 'requestss' whose summary and source link are requests' own, respelt."""
    publish(index_server, tmp_path, "requestss", "1.0", age=YOUNG, owners={"newcomer": "Owner"})
    index_server.set_project_info("requestss", summary="python http for humans",
                                  project_urls={"Source": "https://github.com/psf/requests.git"})


def screen(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", timeout=30)


def stored(mirror, name: str) -> tuple[str, list[FindingRow], dict]:
    with mirror.services.sessions() as session:
        state = session.get(Project, name).state
        findings = list(session.scalars(select(FindingRow).where(FindingRow.project == name)))
        snapshot = session.scalars(select(Snapshot).where(Snapshot.project == name)).one()
        return state, findings, dict(snapshot.facts)


def json_requests(index_server, name: str) -> int:
    return index_server.count_requests(f"/pypi/{name}/json")


def test_a_young_look_alike_with_its_targets_summary_is_denied_naming_the_copied_field(
    start_mirror, index_server, tmp_path
) -> None:
    serve_target(index_server, tmp_path)
    publish(index_server, tmp_path, "reqeusts", "1.0", age=YOUNG, owners={"newcomer": "Owner"})
    index_server.set_project_info("reqeusts", summary=TARGET_SUMMARY)
    mirror = start_mirror()

    response = screen(mirror, "reqeusts")

    assert response.status_code == 403
    state, findings, snapshot = stored(mirror, "reqeusts")
    assert state == DENIED
    copied = [f for f in findings if f.detector == "impersonation"]
    assert len(copied) == 1
    assert copied[0].severity == "critical" and copied[0].target == "requests"
    assert "summary is the target's" in copied[0].title
    assert copied[0].evidence["copied_fields"] == ["summary"]
    assert copied[0].evidence["copied"][0]["target"] == TARGET_SUMMARY
    assert {f.detector for f in findings} >= {"typosquat", "age"}  # the name-only findings stay
    assert "incomplete" not in snapshot
    assert json_requests(index_server, "requests") == 1  # the target's JSON, asked once


def test_the_same_name_without_the_copy_gets_only_the_name_only_findings(start_mirror, index_server, tmp_path) -> None:
    serve_target(index_server, tmp_path)
    publish(index_server, tmp_path, "reqeusts", "1.0", age=YOUNG, owners={"newcomer": "Owner"})
    index_server.set_project_info("reqeusts", summary="Helpers for reading exotic request logs",
                                  project_urls={"Source": "https://github.com/newcomer/reqeusts"})
    mirror = start_mirror()

    response = screen(mirror, "reqeusts")

    assert response.status_code == 403
    state, findings, _ = stored(mirror, "reqeusts")
    assert state == QUARANTINED  # review, as the name alone asks
    assert {f.detector for f in findings} == {"typosquat", "age"}
    assert json_requests(index_server, "requests") == 1  # asked, compared, nothing copied


def test_an_honest_sub_project_of_the_targets_owners_is_allowed_while_a_copy_is_still_denied(
    start_mirror, index_server, tmp_path
) -> None:
    serve_target(index_server, tmp_path)
    # The target's own owners publish a sub-project in the same repository, with a summary like the target's.
    publish(index_server, tmp_path, "requests-client", "1.0", owners={"psf-maint": "Owner", "helper": "Maintainer"})
    index_server.set_project_info("requests-client", summary=TARGET_SUMMARY, author="Kenneth Reitz",
                                  project_urls=TARGET_URLS)
    publish_copier(index_server, tmp_path)
    mirror = start_mirror(policy=NAME_ONLY_ALLOWED)

    assert screen(mirror, "requests-client").status_code == 200
    state, findings, _ = stored(mirror, "requests-client")
    assert state == ALLOWED
    assert [f.detector for f in findings] == ["typosquat"]  # resembles 'requests'; owners shared: no impersonation

    assert screen(mirror, "requestss").status_code == 403
    state, findings, _ = stored(mirror, "requestss")
    assert state == DENIED
    (copied,) = [f for f in findings if f.detector == "impersonation"]
    assert copied.evidence["copied_fields"] == ["project_urls[Source]", "summary"]
    assert json_requests(index_server, "requests") == 1  # the second look-alike read the cached target


def test_a_target_upstream_cannot_serve_makes_the_decision_provisional(start_mirror, index_server, tmp_path) -> None:
    serve_target(index_server, tmp_path)
    publish(index_server, tmp_path, "reqeusts", "1.0", age=YOUNG, owners={"newcomer": "Owner"})
    index_server.set_project_info("reqeusts", summary=TARGET_SUMMARY)
    mirror = start_mirror()

    with index_server.fault("/pypi/requests/json", "status", status=503):
        assert screen(mirror, "reqeusts").status_code == 403
    state, findings, snapshot = stored(mirror, "reqeusts")
    assert state == QUARANTINED  # waits; never "nothing copied"
    assert "impersonation" not in {f.detector for f in findings}
    assert any("'requests', which the name resembles" in gap for gap in snapshot["incomplete"])
    with mirror.services.sessions() as session:
        assert session.get(Project, "reqeusts").reason.startswith("facts incomplete")


def test_a_re_audit_compares_with_the_target_again_and_keeps_the_finding_open(
    start_mirror, index_server, tmp_path
) -> None:
    serve_target(index_server, tmp_path)
    publish_copier(index_server, tmp_path)
    # Name-only findings let through: only the impersonation finding keeps the project out.
    mirror = start_mirror(policy=NAME_ONLY_ALLOWED)
    assert screen(mirror, "requestss").status_code == 403

    audit(mirror)

    state, findings, _ = stored(mirror, "requestss")
    assert state == DENIED
    (open_finding,) = [f for f in findings if f.detector == "impersonation" and f.resolved_at is None]
    assert open_finding.evidence["copied_fields"] == ["project_urls[Source]", "summary"]


def test_target_lookups_are_bounded_time_limited_and_cached(index_server, tmp_path) -> None:
    serve_target(index_server, tmp_path)
    publish(index_server, tmp_path, "numpy", "2.0", owners={"np-maint": "Owner"})
    publish(index_server, tmp_path, "flask", "3.0")
    guard = NetGuard({url_host_entry(index_server.url)}, allow_private=True)
    client = UpstreamClient(index_server.simple_url, timeout=10, max_page_bytes=1 << 20, guard=guard)
    clock = [0.0]
    with ThreadPoolExecutor(4) as pool:
        targets = TargetMetadata(client.fetch_project_json, pool.submit, lambda: clock[0], wait_seconds=0.5,
                                 ttl_seconds=60, max_targets=2)
        found, gaps = targets.lookup(["requests", "numpy", "flask"])
        assert sorted(found) == ["numpy", "requests"] and gaps == []  # the third is never asked
        assert found["requests"].summary == TARGET_SUMMARY and found["requests"].owners == {"psf-maint"}
        assert index_server.count_requests("/pypi/flask/json") == 0

        assert targets.lookup(["requests"])[0]["requests"] == found["requests"]
        assert json_requests(index_server, "requests") == 1  # cached
        clock[0] = 61.0  # the cache entry has expired
        with index_server.fault("/pypi/requests/json", "hang", seconds=3):
            started = time.monotonic()
            found, gaps = targets.lookup(["requests"])
            waited = time.monotonic() - started
        assert found == {} and len(gaps) == 1 and "took over 0.5 s" in gaps[0]
        assert waited < 2.0  # the screening waits wait_seconds, not the upstream timeout
        assert targets.lookup(["never-published"]) == ({}, [])  # absent upstream: no metadata, no gap


def test_the_resembled_project_limits_are_upstream_settings(start_mirror) -> None:
    """[upstream] resembled_* reach the screening's fetcher, and are validated."""
    mirror = start_mirror(upstream={"resembled_projects": 1, "resembled_wait": 0.5, "resembled_ttl": 60.0,
                                    "resembled_cache_entries": 10})
    targets = mirror.services.screening.targets
    assert (targets.max_targets, targets.wait_seconds, targets.ttl_seconds, targets.max_entries) == (1, 0.5, 60.0, 10)
    with pytest.raises(SettingsError, match="upstream.resembled_wait"):
        settings_from_mapping({"upstream": {"resembled_wait": 0}})
