"""No body from an anonymous caller, and no body past its cap (issue 12, item 4).

The attack: an 800 MiB JSON body to ``POST /api/v1/projects/X/deny``
without ``Authorization`` was read in full (RSS +1.5 GB) and answered 422.
Here the head of such a request is sent and the body never is: a server
that reads before it authenticates hangs on it and the test times out.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.hardening.rawhttp import answer_before_body, head
from tests.review.support import TYPOSQUAT, Api, make_token, quarantine

LIMIT = 4096
HUGE = 800 * 1024 * 1024


@pytest.fixture
def mirror(start_mirror):
    return start_mirror(server={"max_body_bytes": LIMIT})


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def _sign_in(mirror, secret: str) -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    form = browser.get(mirror.url + "admin/login", timeout=30)
    done = browser.post(mirror.url + "admin/login", data={"token": secret, "csrf_token": _csrf(form.text)},
                        allow_redirects=False, timeout=30)
    assert done.status_code == 303, done.text
    return browser


def _chunks(total: int, size: int = 1024):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("framing", ["Content-Length: %d" % HUGE, "Transfer-Encoding: chunked"])
def test_an_anonymous_api_call_is_refused_before_its_body(mirror, framing: str) -> None:
    status, answer, closed = answer_before_body(
        mirror.port,
        head("POST", f"/api/v1/projects/{TYPOSQUAT}/deny", mirror.port, "Content-Type: application/json", framing),
    )
    assert status == 401, answer[:300]
    assert b"www-authenticate: Bearer" in answer.lower().replace(b"bearer", b"Bearer")
    assert closed, "the server must not stay to read (or drain) the body it refused"
    # Basic credentials are not the API's: refused before the body as well.
    status, answer, _ = answer_before_body(
        mirror.port,
        head("POST", f"/api/v1/projects/{TYPOSQUAT}/deny", mirror.port, "Authorization: Basic dTpw", framing),
    )
    assert status == 401, answer[:300]


def test_an_anonymous_admin_form_post_is_refused_before_its_body(mirror) -> None:
    for path in (f"/admin/projects/{TYPOSQUAT}/decide", "/admin/logout", "/admin/decisions/1/undo"):
        status, answer, closed = answer_before_body(
            mirror.port,
            head("POST", path, mirror.port, "Content-Type: application/x-www-form-urlencoded",
                 f"Content-Length: {HUGE}", "Cookie: theme=dark"),
        )
        assert status == 401 and closed, (path, answer[:300])
    # Reading pages without a session still redirects to sign-in, as before.
    assert requests.get(mirror.url + "admin/", allow_redirects=False, timeout=30).status_code == 303


def test_api_bodies_past_the_cap_get_413_declared_or_chunked(mirror, index_server, tmp_path) -> None:
    quarantine(mirror, index_server, tmp_path)
    secret = make_token(mirror, "reviewer", "rita")
    # Declared: refused from the head alone, with a valid-looking token (the route checks validity later).
    status, answer, closed = answer_before_body(
        mirror.port,
        head("POST", f"/api/v1/projects/{TYPOSQUAT}/deny", mirror.port, f"Authorization: Bearer {secret}",
             "Content-Type: application/json", f"Content-Length: {LIMIT + 1}"),
    )
    assert status == 413 and closed, answer[:300]
    assert f"{LIMIT} bytes".encode() in answer
    # Chunked, no length: counted as it arrives.  Valid JSON, so only the size can refuse it.
    body = json.dumps({"reason": "x" * 100}).encode() + b" " * LIMIT
    chunked = requests.post(
        mirror.url + f"api/v1/projects/{TYPOSQUAT}/deny",
        data=iter([body[i : i + 1000] for i in range(0, len(body), 1000)]),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert chunked.status_code == 413, chunked.text
    reviewer = Api(mirror, secret)
    assert reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]["state"] == "quarantined"  # nothing happened
    # Under the cap the same call works.
    assert reviewer.post(f"projects/{TYPOSQUAT}/deny", json={"reason": "typosquat"}).status_code == 200
    assert reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]["state"] == "denied"


def test_form_bodies_past_the_cap_get_413_signed_in_or_at_sign_in(mirror, index_server, tmp_path) -> None:
    quarantine(mirror, index_server, tmp_path)
    browser = _sign_in(mirror, make_token(mirror, "reviewer", "rita"))
    page = browser.get(mirror.url + f"admin/projects/{TYPOSQUAT}", timeout=30)
    form = f"action=deny&reason=typosquat&csrf_token={_csrf(page.text)}&pad=".encode()
    url = mirror.url + f"admin/projects/{TYPOSQUAT}/decide"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    too_big = browser.post(url, data=iter([form, *_chunks(LIMIT)]), headers=headers, allow_redirects=False, timeout=30)
    assert too_big.status_code == 413, too_big.text
    assert Api(mirror, make_token(mirror, "reviewer", "otto")).ok("GET", f"projects/{TYPOSQUAT}")["project"]["state"] == "quarantined"
    # Sign-in needs no session, but its body is capped too.
    login = requests.post(mirror.url + "admin/login", data=iter([b"token=", *_chunks(LIMIT)]), headers=headers,
                          allow_redirects=False, timeout=30)
    assert login.status_code == 413, login.text
    done = browser.post(url, data=form + b"x", headers=headers, allow_redirects=False, timeout=30)
    assert done.status_code == 303, done.text


def test_any_other_route_caps_a_declared_body(mirror) -> None:
    status, answer, closed = answer_before_body(
        mirror.port, head("POST", "/simple/", mirror.port, f"Content-Length: {HUGE}")
    )
    assert status == 413 and closed, answer[:300]


def test_an_answer_before_the_body_closes_the_connection_instead_of_draining_it(start_mirror) -> None:
    """``/legacy/`` refuses an anonymous upload unread; the server must not then read 800 MiB to discard it."""
    mirror = start_mirror(internal={"upload_token": "s3cret-upload"})
    for framing in (f"Content-Length: {HUGE}", "Transfer-Encoding: chunked"):
        status, answer, closed = answer_before_body(
            mirror.port, head("POST", "/legacy/", mirror.port, "Content-Type: multipart/form-data; boundary=x", framing)
        )
        assert status == 401 and closed, answer[:300]
    # Without a body, keep-alive stays: two requests on one connection.
    with requests.Session() as session:
        for _ in range(2):
            assert session.get(mirror.url + "healthz", timeout=30).headers.get("connection") != "close"
