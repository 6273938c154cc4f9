"""Unknown upload times never let a release or project pass unscreened (issue 12, item 9).

The upstream here speaks HTML only, as many private and older indexes do:
its pages carry no PEP 700 upload times, so the mirror must ask the project
JSON, and hold what nobody dates.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from mirror.db.models import Decision, FindingRow, Project, Release, Snapshot
from mirror.screening.decisions import decide_project
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"
COOLDOWN = timedelta(hours=72)


@pytest.fixture
def index_server():
    from tests.support.index_server import IndexServer

    server = IndexServer(formats=("html",))
    server.start()
    yield server
    server.stop()


def page(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def file_url(mirror, wheel) -> str:
    return f"{mirror.url}files/{wheel.sha256}/{wheel.filename}"


def test_release_times_come_from_the_project_json_when_the_page_has_none(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0")  # 800 days old
    fresh = publish(index_server, tmp_path, "calm-badger", "2.0", age=timedelta(hours=1))[0]
    doc = page(mirror, "calm-badger").json()
    assert doc["versions"] == ["1.0"]
    refused = requests.get(file_url(mirror, fresh), timeout=30)
    assert refused.status_code == 403 and "cooldown" in refused.text
    with mirror.services.sessions() as session:
        held = session.scalars(select(Release).where(Release.version == "2.0")).one()
    assert held.state == "held"
    # Held until the JSON's upload time plus the cooldown, not from first sight.
    assert abs(held.held_until - (held.upload_time + COOLDOWN)) < timedelta(seconds=1)
    assert abs(held.upload_time - (mirror.clock() - timedelta(hours=1))) < timedelta(minutes=5)


def test_with_no_upload_time_anywhere_a_release_is_held_as_new_and_says_so(mirror, index_server, tmp_path, clock) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0")[0]
    index_server.fault("/pypi/", "status", status=404)  # no JSON API at all
    response = page(mirror, "quiet-otter")
    assert response.status_code == 200
    assert response.json()["versions"] == []
    refused = requests.get(file_url(mirror, wheel), timeout=30)
    assert refused.status_code == 403 and "upload time unknown" in refused.text
    with mirror.services.sessions() as session:
        release = session.scalars(select(Release).where(Release.project == "quiet-otter")).one()
        findings = list(session.scalars(select(FindingRow).where(FindingRow.project == "quiet-otter")))
    assert release.state == "held" and release.held_until == clock() + COOLDOWN
    evidence = {(f.version, f.detector): f for f in findings}
    assert evidence[("1.0", "facts")].evidence["uploaded_at"] is None
    assert "age could not be checked" in evidence[(None, "facts")].title
    clock.advance(hours=72, seconds=1)
    assert page(mirror, "quiet-otter").json()["versions"] == ["1.0"]
    assert requests.get(file_url(mirror, wheel), timeout=30).status_code == 200


def test_a_json_api_failure_at_first_screening_holds_the_project_and_it_is_screened_again(
    mirror, index_server, tmp_path, clock
) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    with index_server.fault("/pypi/", "status", status=503):
        refused = page(mirror, "quiet-otter")
        assert refused.status_code == 403
        assert "facts incomplete" in refused.text
        clock.advance(seconds=301)
        again = page(mirror, "quiet-otter")  # still failing: screened again, still held
        assert again.status_code == 403 and "facts incomplete" in again.text
    with mirror.services.sessions() as session:
        first = session.get(Project, "quiet-otter")
        assert first.state == "quarantined" and first.reason.startswith("facts incomplete")
    assert page(mirror, "quiet-otter").status_code == 403  # provisional, but it stands until due
    clock.advance(seconds=301)
    allowed = page(mirror, "quiet-otter")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["versions"] == ["1.0"]
    with mirror.services.sessions() as session:
        decisions = list(session.scalars(select(Decision).where(Decision.project == "quiet-otter")
                                         .order_by(Decision.id)))
        open_findings = list(session.scalars(select(FindingRow).where(
            FindingRow.project == "quiet-otter", FindingRow.resolved_at.is_(None), FindingRow.version.is_(None))))
    assert [d.action for d in decisions if d.version is None] == ["review", "review", "allow"]
    assert "facts incomplete" in decisions[0].reason
    # 1.0 was held as undated during the outage, and decided again once the JSON dated it.
    assert [d.action for d in decisions if d.version == "1.0"] == ["hold", "allow"]
    assert not any("facts incomplete" in f.title for f in open_findings)


def test_a_reviewers_decision_on_a_provisional_project_is_final(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    with index_server.fault("/pypi/", "status", status=503):
        assert page(mirror, "quiet-otter").status_code == 403
    with mirror.services.sessions.begin() as session:
        decide_project(session, project="quiet-otter", action="deny", actor="rita",
                       reason="facts incomplete, and I do not trust it", now=clock())
    mirror.services.after_decision("quiet-otter")
    clock.advance(seconds=301)
    assert page(mirror, "quiet-otter").status_code == 403
    with mirror.services.sessions() as session:
        assert session.get(Project, "quiet-otter").state == "denied"


def test_a_page_without_upload_times_waits_for_the_project_json(mirror, index_server, tmp_path) -> None:
    # Only the JSON can date this page's files, so the decision is not taken before it arrives.
    publish(index_server, tmp_path, "calm-osprey", "1.0", owners={"osprey-maint": "Owner"})
    index_server.fault("/pypi/calm-osprey/", "hang", seconds=2.0, times=1)
    assert page(mirror, "calm-osprey").status_code == 200
    with mirror.services.sessions() as session:
        kept = session.scalars(select(Snapshot).where(Snapshot.project == "calm-osprey")).one()
    assert kept.facts["roles"] == {"osprey-maint": "Owner"}
