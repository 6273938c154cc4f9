"""Every refused client counts in "clients that asked": the refused-requests table, end to end.

Clients connect from distinct loopback addresses (127.0.0.N) over real HTTP, so the
mirror sees them as different machines without any proxy header.  The recorder's
bounds (buffer, per-project cap, retention) are checked on the real database.
"""

from __future__ import annotations

import http.client
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mirror.db import migrate
from mirror.db.models import PinnedFile, RefusedClient
from mirror.db.session import make_engine, make_session_factory
from mirror.review import queries
from mirror.review.refusals import OVERFLOW, RefusalRecorder
from tests.review.support import TYPOSQUAT, allowed, make_token, quarantine
from tests.review.test_pages import sign_in
from tests.review.test_pages_review import PIP_UA, UV_UA, _page, _text
from tests.support.publish import publish
from tests.support.running import FakeClock


def ask(mirror, path: str, source: str, user_agent: str = "curl/8.5.0") -> int:
    """GET ``path`` from the source address ``source``; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", mirror.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", path, headers={"User-Agent": user_agent})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_every_refused_client_counts_on_the_pages_and_in_the_api(
    mirror, index_server, tmp_path, reviewer_token, reviewer
) -> None:
    quarantine(mirror, index_server, tmp_path)  # screened on 127.0.0.1's request
    assert ask(mirror, f"/simple/{TYPOSQUAT}/", "127.0.0.2", PIP_UA) == 403
    assert ask(mirror, f"/simple/{TYPOSQUAT}/", "127.0.0.2", PIP_UA) == 403
    assert ask(mirror, f"/simple/{TYPOSQUAT}/", "127.0.0.3", UV_UA) == 403
    assert ask(mirror, f"/pypi/{TYPOSQUAT}/1.0/json", "127.0.0.4", "poetry/1.8.3") == 403
    # The API reads the counts current, without waiting for the background flush.
    assert reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]["clients_refused"] == 4
    browser = sign_in(mirror, reviewer_token)

    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    card = page[page.index("<h3>Clients refused</h3>"):]
    card = _text(card[: card.index("</div>")])
    assert "4 distinct clients were refused it in the last 30 days" in card
    assert "127.0.0.2 : 2 times" in card and "pip 24.0 · CPython 3.12.1 · Ubuntu 22.04 (Linux, x86_64)" in card
    assert "127.0.0.3 : 1 time," in card and "uv 0.4.18" in card and "· CI" in card
    assert "127.0.0.4" in card and "asked for release 1.0" in card
    assert '"openssl_version"' not in card  # parsed, not the raw agent

    queue = _page(browser, mirror, "admin/")
    row = next(r for r in queue.split("<tr>") if f">{TYPOSQUAT}<" in r)
    assert _text(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[4]) == "4"

    listed = reviewer.ok("GET", "queue")["projects"]
    assert [(p["name"], p["clients_refused"], p["clients_refused_more"]) for p in listed] == [(TYPOSQUAT, 4, False)]
    history = reviewer.ok("GET", f"projects/{TYPOSQUAT}")
    assert history["project"]["clients_refused"] == 4
    by_client = {c["client"]: c for c in history["refused_clients"]}
    assert by_client["127.0.0.2"]["count"] == 2 and by_client["127.0.0.2"]["installer"] == "pip 24.0"
    assert by_client["127.0.0.2"]["ci"] is False and by_client["127.0.0.3"]["ci"] is True
    assert by_client["127.0.0.4"]["version"] == "1.0" and by_client["127.0.0.4"]["installer"] == "poetry/1.8.3"
    search = reviewer.ok("GET", "projects", q=TYPOSQUAT)["items"]
    assert search[0]["clients_refused"] == 4


def test_a_refused_file_records_its_release_and_name(start_mirror, index_server, tmp_path, reviewer_token_for) -> None:
    mirror = start_mirror(policy={"cooldown_hours": 24 * 7})
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    publish(index_server, tmp_path, "quiet-otter", "2.0", age=timedelta(hours=2))  # held: in its cooldown
    assert ask(mirror, "/simple/quiet-otter/", "127.0.0.5") == 200
    with mirror.services.sessions() as session:
        pin = session.scalars(select(PinnedFile).where(PinnedFile.version == "2.0")).one()
    assert ask(mirror, f"/files/{pin.sha256}/{pin.filename}", "127.0.0.6", PIP_UA) == 403
    assert ask(mirror, f"/files/{pin.sha256}/{pin.filename}.metadata", "127.0.0.6", PIP_UA) == 403
    mirror.app.state.refusals.flush()
    with mirror.services.sessions() as session:
        rows = list(session.scalars(select(RefusedClient)))
    assert [(r.project, r.client, r.count, r.version, r.filename) for r in rows] == [
        ("quiet-otter", "127.0.0.6", 2, "2.0", pin.filename + ".metadata")]
    page = _text(_page(sign_in(mirror, reviewer_token_for(mirror)), mirror, "admin/projects/quiet-otter"))
    assert "1 distinct client was refused it" in page and f"asked for {pin.filename}.metadata" in page


def test_served_pages_record_nothing(mirror, index_server, tmp_path) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter")
    for source in ("127.0.0.2", "127.0.0.3"):
        assert ask(mirror, "/simple/quiet-otter/", source) == 200
    assert ask(mirror, "/simple/no-such-project-here/", "127.0.0.2") == 404
    mirror.app.state.refusals.flush()
    with mirror.services.sessions() as session:
        assert session.scalars(select(RefusedClient)).first() is None


# -- the recorder's bounds, on the real database ---------------------------------------


def _recorder(database_url: str, clock: FakeClock, **options) -> tuple[RefusalRecorder, object]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    return RefusalRecorder(sessions, clock, retention=timedelta(days=30), monotonic=clock.monotonic,
                           **options), sessions


def _rows(sessions) -> dict[tuple[str, str], int]:
    with sessions() as session:
        return {(r.project, r.client): r.count for r in session.scalars(select(RefusedClient))}


def test_a_flood_from_one_client_is_one_row_and_the_buffer_is_bounded(database_url) -> None:
    clock = FakeClock()
    recorder, sessions = _recorder(database_url, clock, max_pending=3)
    for _ in range(10_000):
        recorder.record(project="reqeusts", client="10.0.0.1", user_agent=PIP_UA)
    for n in range(2, 7):
        recorder.record(project="reqeusts", client=f"10.0.0.{n}")
    assert recorder.dropped == 3  # the buffer holds 3 keys: the 4th..6th new clients were not kept
    assert recorder.flush() == 3
    assert _rows(sessions) == {("reqeusts", "10.0.0.1"): 10_000, ("reqeusts", "10.0.0.2"): 1,
                               ("reqeusts", "10.0.0.3"): 1}
    assert recorder.dropped == 0 and recorder.flush() == 0


def test_two_processes_add_up_on_the_same_row(database_url) -> None:
    clock = FakeClock()
    first, sessions = _recorder(database_url, clock)
    second, _ = _recorder(database_url, clock)
    first.record(project="reqeusts", client="10.0.0.1", user_agent="pip/23.0")
    first.flush()
    clock.advance(minutes=5)
    second.record(project="reqeusts", client="10.0.0.1", user_agent=UV_UA, filename="reqeusts-1.0.tar.gz",
                  version="1.0")
    second.record(project="reqeusts", client="10.0.0.1", user_agent=UV_UA, filename="reqeusts-1.0.tar.gz",
                  version="1.0")
    second.flush()
    with sessions() as session:
        [row] = session.scalars(select(RefusedClient))
    assert row.count == 3 and row.last_seen == clock.now and row.first_seen == clock.now - timedelta(minutes=5)
    assert (row.installer, row.version, row.filename, row.ci) == ("uv 0.4.18", "1.0", "reqeusts-1.0.tar.gz", True)


def test_past_the_per_project_cap_new_clients_share_one_row(database_url) -> None:
    clock = FakeClock()
    recorder, sessions = _recorder(database_url, clock, max_clients=2)
    for n in range(1, 5):
        recorder.record(project="reqeusts", client=f"2001:db8::{n}")
    recorder.flush()
    for n in (1, 5, 6):  # one known client, two new ones past the cap
        recorder.record(project="reqeusts", client=f"2001:db8::{n}")
    recorder.flush()
    rows = _rows(sessions)
    assert len(rows) == 3 and rows[("reqeusts", OVERFLOW)] == 4
    assert sum(rows.values()) == 7
    with sessions() as session:
        assert queries.clients_refused(session, ["reqeusts", "other"]) == {"reqeusts": (2, True), "other": (0, False)}


def test_clients_not_seen_for_the_retention_period_are_pruned(database_url) -> None:
    clock = FakeClock()
    recorder, sessions = _recorder(database_url, clock)
    recorder.record(project="reqeusts", client="10.0.0.1")
    recorder.flush()
    clock.advance(days=20)
    recorder.record(project="djnago", client="10.0.0.2")
    recorder.flush()
    clock.advance(days=11)  # reqeusts' client last seen 31 days ago, djnago's 11
    recorder.flush()
    assert _rows(sessions) == {("djnago", "10.0.0.2"): 1}


def test_the_buffer_is_written_when_the_server_stops(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror()
    quarantine(mirror, index_server, tmp_path)
    mirror.stop()  # nobody flushed by hand: the shutdown did
    with mirror.services.sessions() as session:
        assert [r.client for r in session.scalars(select(RefusedClient))] == ["127.0.0.1"]


@pytest.fixture
def reviewer_token_for():
    return lambda mirror: make_token(mirror, "reviewer", "rita")
