""""Upstream says" shows what the first screening saw, kept in its snapshot: no new upstream request.

Real HTTP through the mirror to the local upstream; the upstream's own request log
says whether the review page asked it anything.
"""

from __future__ import annotations

import requests as http
from sqlalchemy import select

from mirror.db.models import Snapshot
from mirror.upstream.project_info import extract, stored, stored_fields
from tests.audit.support import audit
from tests.review.support import TYPOSQUAT, XSS, quarantine
from tests.review.test_pages import _csrf, sign_in
from tests.review.test_pages_review import _page, _text


def _json_requests(index_server) -> list[str]:
    return [r.path for r in index_server.requests if r.path.startswith("/pypi/")]


def _card(page: str) -> str:
    return page[page.index("<h3>Upstream says</h3>"): page.index("<h3>Ages</h3>")]


def test_screening_keeps_what_upstream_said_and_the_page_shows_it_without_asking(
    mirror, index_server, tmp_path, reviewer_token
) -> None:
    quarantine(
        mirror, index_server, tmp_path, summary="HTTP for humans " + XSS, author="Kenneth " + XSS,
        project_urls={"Source": "javascript:alert(1)", "Home": "https://example.invalid/" + XSS},
    )
    with mirror.services.sessions() as session:
        [snapshot] = session.scalars(select(Snapshot).where(Snapshot.project == TYPOSQUAT))
    kept = snapshot.facts["upstream"]
    assert kept["fields"]["summary"] == "HTTP for humans " + XSS
    assert kept["project_urls"]["Source"] == "javascript:alert(1)"

    # Upstream changes its story afterwards; the page still says what screening saw, and asks nothing.
    index_server.set_project_info(TYPOSQUAT, summary="a different summary now")
    browser = sign_in(mirror, reviewer_token)
    before = len(_json_requests(index_server))
    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    assert len(_json_requests(index_server)) == before
    card = _card(page)
    text = _text(card)
    assert "As screening saw it" in text and f"{snapshot.taken_at:%Y-%m-%d %H:%M} UTC" in card
    assert "HTTP for humans" in text and "a different summary now" not in text
    assert "Unavailable" not in text
    # Escaped, and never a link.
    assert "<script>" not in card and "<img" not in card and "&lt;script&gt;" in card
    assert 'href="javascript' not in card and "javascript:alert(1)" in card

    # Asking again (a signed-in reviewer, with the CSRF token) re-fetches and shows today's answer.
    refreshed = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/upstream/refresh",
                             data={"csrf_token": _csrf(page)}, timeout=30)
    assert refreshed.status_code == 200
    assert len(_json_requests(index_server)) == before + 1
    text = _text(_card(refreshed.text))
    assert "Asked upstream" in text and "a different summary now" in text and "HTTP for humans" not in text


def test_refresh_without_a_session_or_token_is_refused(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    browser = sign_in(mirror, reviewer_token)
    before = len(_json_requests(index_server))
    forged = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/upstream/refresh",
                          data={"csrf_token": "wrong"}, allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    anonymous = http.post(mirror.url + f"admin/projects/{TYPOSQUAT}/upstream/refresh", data={"csrf_token": "x"},
                          allow_redirects=False, timeout=30)
    assert anonymous.status_code == 401
    assert len(_json_requests(index_server)) == before


def test_a_failed_refresh_keeps_showing_what_screening_saw(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path, summary="kept at screening")
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    with index_server.fault("/pypi/", "status", status=503):
        refreshed = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/upstream/refresh",
                                 data={"csrf_token": _csrf(page)}, timeout=30)
    assert refreshed.status_code == 200
    text = _text(_card(refreshed.text))
    assert "As screening saw it" in text and "kept at screening" in text
    assert "Asking upstream again failed" in text


def test_a_screening_without_upstreams_json_keeps_no_upstream_entry(
    mirror, index_server, tmp_path, reviewer_token
) -> None:
    with index_server.fault("/pypi/", "status", status=503):
        quarantine(mirror, index_server, tmp_path)
    with mirror.services.sessions() as session:
        [snapshot] = session.scalars(select(Snapshot).where(Snapshot.project == TYPOSQUAT))
    assert "upstream" not in snapshot.facts and snapshot.facts["incomplete"]
    # The page then asks upstream itself (it answers again now).
    page = _page(sign_in(mirror, reviewer_token), mirror, f"admin/projects/{TYPOSQUAT}")
    assert "Asked upstream" in _text(_card(page))


def test_stored_entries_round_trip_and_are_bounded() -> None:
    document = {"info": {"summary": "x" * 2000, "author": "a", "project_urls": {f"u{i}": "v" for i in range(40)},
                         "license": 3},
                "ownership": {"roles": [{"user": "alice", "role": "Owner"}]}}
    info = extract(document)
    assert len(info.fields["summary"]) == 501 and "license" not in info.fields
    assert len(info.project_urls) == 20 and info.owners == {"alice": "Owner"}
    again = stored({"upstream": stored_fields(info)}, None)
    assert again is not None and again.origin == "stored"
    assert (again.fields, again.owners, again.project_urls) == (info.fields, info.owners, info.project_urls)
    assert stored({"upstream": "not a table"}, None) is None and stored({}, None) is None


def test_a_reaudit_keeps_what_upstream_says_current(mirror, index_server, tmp_path, reviewer_token) -> None:
    """The re-audit's snapshot carries what upstream says too: the newest text, never a blank card."""
    quarantine(mirror, index_server, tmp_path, summary="kept at screening")
    index_server.set_project_info(TYPOSQUAT, summary="changed upstream since", owners={"someone-new": "Owner"})
    audit(mirror)
    with mirror.services.sessions() as session:
        latest = session.scalars(
            select(Snapshot).where(Snapshot.project == TYPOSQUAT).order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
        ).first()
    assert latest.facts["upstream"]["fields"]["summary"] == "changed upstream since"
    browser = sign_in(mirror, reviewer_token)
    before = len(_json_requests(index_server))
    text = _text(_card(_page(browser, mirror, f"admin/projects/{TYPOSQUAT}")))
    assert len(_json_requests(index_server)) == before
    assert "changed upstream since" in text and "kept at screening" not in text
