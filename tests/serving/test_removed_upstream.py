"""A file (or a whole project) upstream removes - what the index does to malware - is held,
recorded and notified; a reviewer can release it, and "keep" serves it on."""

from __future__ import annotations

import requests

from mirror.db.models import Event, PinnedFile
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def file_url(mirror, name: str) -> str:
    page = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30).json()
    return requests.compat.urljoin(mirror.simple_url + f"{name}/", page["files"][0]["url"])


def refresh(mirror, clock, name: str) -> requests.Response:
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def test_a_file_upstream_removed_is_held_recorded_and_notified(start_mirror, index_server, clock, tmp_path) -> None:
    mirror = start_mirror()
    sent: list[tuple[str, dict]] = []
    mirror.services.pages.notify = lambda kind, payload: sent.append((kind, payload))
    wheel = publish(index_server, tmp_path, "quiet-otter")[0]
    url = file_url(mirror, "quiet-otter")
    assert requests.get(url, timeout=30).status_code == 200  # cached
    index_server.remove_file(wheel.filename)
    refresh(mirror, clock, "quiet-otter")
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 403 and "upstream removed" in refused.text
    with mirror.services.sessions() as session:
        events = session.query(Event).filter_by(kind="file-removed").all()
        pin = session.query(PinnedFile).filter_by(filename=wheel.filename).one()
    assert len(events) == 1 and events[0].filename == wheel.filename and pin.removed_at is not None
    assert [kind for kind, _ in sent] == ["file-removed"]
    # A reviewer releases it; the next page build does not hold it again.
    with mirror.services.sessions.begin() as session:
        session.query(PinnedFile).filter_by(filename=wheel.filename).one().blocked_reason = None
    mirror.services.after_decision("quiet-otter")
    refresh(mirror, clock, "quiet-otter")
    assert requests.get(url, timeout=30).status_code == 200
    with mirror.services.sessions() as session:
        assert session.query(Event).filter_by(kind="file-removed").count() == 1


def test_a_whole_project_removed_upstream_holds_its_cached_files(start_mirror, index_server, clock, tmp_path) -> None:
    mirror = start_mirror()
    publish(index_server, tmp_path, "quiet-otter")
    url = file_url(mirror, "quiet-otter")
    assert requests.get(url, timeout=30).status_code == 200
    index_server.remove_project("quiet-otter")
    assert refresh(mirror, clock, "quiet-otter").status_code == 404
    assert requests.get(url, timeout=30).status_code == 403


def test_keep_serves_a_removed_file_but_still_records_it(start_mirror, index_server, clock, tmp_path) -> None:
    mirror = start_mirror(upstream={"on_removed": "keep"})
    wheel = publish(index_server, tmp_path, "quiet-otter")[0]
    url = file_url(mirror, "quiet-otter")
    assert requests.get(url, timeout=30).status_code == 200
    index_server.remove_file(wheel.filename)
    refresh(mirror, clock, "quiet-otter")
    assert requests.get(url, timeout=30).status_code == 200
    with mirror.services.sessions() as session:
        assert session.query(Event).filter_by(kind="file-removed").count() == 1
