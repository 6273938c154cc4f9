"""A first decision taken on the page while the project JSON is still on its way (issue 16, cold path).

The project JSON is fetched beside the page.  When the name resembles no
project and the page dates every file (PEP 700), the JSON could not change
the verdict, so the client is answered without waiting for it and the
owners it lists are recorded when it arrives.  A look-alike, or a page
without upload times, still waits (``test_upload_times``).  Real HTTP to the local upstream, whose
JSON API is made to answer late; SQLite always, PostgreSQL when configured.
"""

from __future__ import annotations

import requests
from sqlalchemy import desc, select

from mirror.db.models import Project, Snapshot
from tests.audit.support import audit
from tests.support.publish import publish
from tests.support.waiting import wait_until

JSON = "application/vnd.pypi.simple.v1+json"
LATE = 3.0  # seconds the JSON API keeps its answer: far longer than a page takes, within the read timeout (5 s)
TOO_LATE = 7.0  # past the read timeout: the fetch fails


def first_sight(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=60)


def snapshot(mirror, name: str) -> dict:
    with mirror.services.sessions() as session:
        row = session.scalars(
            select(Snapshot).where(Snapshot.project == name).order_by(desc(Snapshot.taken_at)).limit(1)
        ).first()
        return dict(row.facts) if row is not None else {}


def state(mirror, name: str) -> str:
    with mirror.services.sessions() as session:
        return session.get(Project, name).state


def test_a_plain_name_is_served_before_its_project_json_arrives_and_its_owners_follow(mirror, index_server, tmp_path):
    publish(index_server, tmp_path, "quiet-heron", "1.0", owners={"heron-maint": "Owner"})
    index_server.set_project_info("quiet-heron", summary="Herons, quietly.")
    index_server.fault("/pypi/quiet-heron/", "hang", seconds=LATE, times=1)
    response = first_sight(mirror, "quiet-heron")
    assert response.status_code == 200 and response.json()["files"]
    assert state(mirror, "quiet-heron") == "allowed"
    # Answered and decided while upstream still held the document back: no owners yet.
    assert snapshot(mirror, "quiet-heron").get("roles") is None
    assert wait_until(lambda: snapshot(mirror, "quiet-heron").get("roles") is not None, timeout=LATE + 20)
    kept = snapshot(mirror, "quiet-heron")
    assert kept["roles"] == {"heron-maint": "Owner"}
    assert kept["upstream"]["fields"]["summary"] == "Herons, quietly."
    assert kept["first_upload"] is not None


def test_a_look_alike_waits_for_its_project_json(mirror, index_server, tmp_path):
    publish(index_server, tmp_path, "requests", "2.32.0", owners={"psf-maint": "Owner"})
    publish(index_server, tmp_path, "requestss", "1.0", owners={"newcomer": "Owner"})
    index_server.fault("/pypi/requestss/", "hang", seconds=2.0, times=1)
    first_sight(mirror, "requestss")
    # The JSON's facts (here its owners) were part of the decision, not recorded after it.
    assert snapshot(mirror, "requestss").get("roles") == {"newcomer": "Owner"}


def test_when_the_late_project_json_fails_the_decision_stands_and_the_next_audit_records_the_owners(
    mirror, index_server, tmp_path
):
    publish(index_server, tmp_path, "still-heron", "1.0", owners={"heron-maint": "Owner"})
    held_back = index_server.fault("/pypi/still-heron/", "hang", seconds=TOO_LATE)
    assert first_sight(mirror, "still-heron").status_code == 200
    assert state(mirror, "still-heron") == "allowed"
    # The fetch times out after the answer: no finding, no owners, the project stays served.
    assert wait_until(lambda: held_back.hits >= 1, timeout=10)
    assert not wait_until(lambda: snapshot(mirror, "still-heron").get("roles") is not None, timeout=TOO_LATE)
    assert first_sight(mirror, "still-heron").status_code == 200
    held_back.clear()
    audit(mirror)
    assert snapshot(mirror, "still-heron").get("roles") == {"heron-maint": "Owner"}
