"""The admin pages over plain HTTP: sign-in, cookies, CSRF, escaping, headers."""

from __future__ import annotations

import re

import requests

from tests.review.support import TYPOSQUAT, XSS, Api, get, make_token, quarantine


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def sign_in(mirror, secret: str) -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    form = browser.get(mirror.url + "admin/login", timeout=30)
    response = browser.post(
        mirror.url + "admin/login",
        data={"token": secret, "csrf_token": _csrf(form.text), "next": "/admin/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    return browser


def test_pages_need_a_session(mirror) -> None:
    for path in ("/admin/", f"/admin/projects/{TYPOSQUAT}", "/admin/audit", "/admin/projects?q=x"):
        response = get(mirror, path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/admin/login?next=%2Fadmin%2F")
    assert get(mirror, "/admin").headers["Location"] == "/admin/"


def test_login_sets_a_strict_httponly_cookie_that_is_not_the_token(mirror, reviewer_token) -> None:
    browser = requests.Session()
    form = browser.get(mirror.url + "admin/login", timeout=30)
    assert 'autocomplete="current-password"' in form.text and '<label for="token">' in form.text
    response = browser.post(
        mirror.url + "admin/login",
        data={"token": reviewer_token, "csrf_token": _csrf(form.text), "next": "/admin/audit"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/audit"
    cookie = next(c for c in response.headers["Set-Cookie"].split(", indexguard_login") if "indexguard_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/admin" in cookie
    assert reviewer_token not in response.headers["Set-Cookie"]
    page = browser.get(mirror.url + "admin/", timeout=30)
    assert page.status_code == 200 and "Signed in as <strong>rita</strong>" in page.text


def test_login_refusals(mirror, reviewer_token, client_token) -> None:
    browser = requests.Session()
    form = browser.get(mirror.url + "admin/login", timeout=30)
    csrf = _csrf(form.text)
    url = mirror.url + "admin/login"
    no_csrf = browser.post(url, data={"token": reviewer_token}, allow_redirects=False, timeout=30)
    assert no_csrf.status_code == 403 and "indexguard_session" not in no_csrf.headers.get("Set-Cookie", "")
    other_browser = requests.post(url, data={"token": reviewer_token, "csrf_token": csrf}, allow_redirects=False, timeout=30)
    assert other_browser.status_code == 403  # the token must match this browser's login cookie
    wrong = browser.post(url, data={"token": "igt_nope", "csrf_token": csrf}, allow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "not valid" in wrong.text
    csrf = _csrf(wrong.text)
    client = browser.post(url, data={"token": client_token, "csrf_token": csrf}, allow_redirects=False, timeout=30)
    assert client.status_code == 401 and "package clients" in client.text
    evil_next = browser.post(
        url, data={"token": reviewer_token, "csrf_token": _csrf(client.text), "next": "//evil.example/"},
        allow_redirects=False, timeout=30,
    )
    assert evil_next.status_code == 303 and evil_next.headers["Location"] == "/admin/"


def test_posts_without_the_sessions_csrf_token_are_refused(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    browser = sign_in(mirror, reviewer_token)
    other = sign_in(mirror, make_token(mirror, "reviewer", "otto"))
    page = browser.get(mirror.url + f"admin/projects/{TYPOSQUAT}", timeout=30)
    url = mirror.url + f"admin/projects/{TYPOSQUAT}/decide"
    for token in (None, "", "forged", _csrf(other.get(mirror.url + "admin/", timeout=30).text)):
        data = {"action": "deny", "reason": "csrf"} | ({"csrf_token": token} if token is not None else {})
        response = browser.post(url, data=data, allow_redirects=False, timeout=30)
        assert response.status_code == 403, token
        assert "CSRF" in response.text
    anonymous = requests.post(url, data={"action": "deny", "reason": "x", "csrf_token": _csrf(page.text)}, timeout=30)
    assert anonymous.status_code == 401
    logout = browser.post(mirror.url + "admin/logout", data={}, allow_redirects=False, timeout=30)
    assert logout.status_code == 403
    reviewer = Api(mirror, reviewer_token)
    assert reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]["state"] == "quarantined"
    ok = browser.post(url, data={"action": "deny", "reason": "typosquat", "csrf_token": _csrf(page.text)},
                      allow_redirects=False, timeout=30)
    assert ok.status_code == 303 and ok.headers["Location"] == f"/admin/projects/{TYPOSQUAT}?done=denied"
    decision = reviewer.ok("GET", f"projects/{TYPOSQUAT}")["decisions"][0]
    assert (decision["action"], decision["actor"], decision["request"]["via"]) == ("deny", "rita", "web")


def test_a_missing_reason_keeps_the_form(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    browser = sign_in(mirror, reviewer_token)
    csrf = _csrf(browser.get(mirror.url + "admin/", timeout=30).text)
    response = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/decide",
                            data={"action": "allow", "reason": "   ", "hours": "3", "csrf_token": csrf}, timeout=30)
    assert response.status_code == 400 and "A reason is required." in response.text
    assert 'value="3"' in response.text
    bad_hours = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/decide",
                             data={"action": "deny", "reason": "x", "hours": "3", "csrf_token": csrf}, timeout=30)
    assert bad_hours.status_code == 400 and "only apply to Allow" in bad_hours.text
    for hours in ("721", "1e300"):  # the API's bound, enforced in the same one place
        too_long = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/decide",
                                data={"action": "allow", "reason": "x", "hours": hours, "csrf_token": csrf}, timeout=30)
        assert too_long.status_code == 400 and "720" in too_long.text, too_long.text[:300]
    assert mirror.services.screening.project_row(TYPOSQUAT).allow_until is None


def test_package_metadata_is_escaped(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path, summary=XSS, author=XSS, owners={XSS[:40]: "Owner"})
    browser = sign_in(mirror, reviewer_token)
    page = browser.get(mirror.url + f"admin/projects/{TYPOSQUAT}", timeout=30)
    assert page.status_code == 200
    assert "<script>window.__xss" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp  # no script source at all
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"


def test_logout_ends_the_session(mirror, reviewer_token) -> None:
    browser = sign_in(mirror, reviewer_token)
    csrf = _csrf(browser.get(mirror.url + "admin/", timeout=30).text)
    cookie = browser.cookies.get("indexguard_session")
    response = browser.post(mirror.url + "admin/logout", data={"csrf_token": csrf}, allow_redirects=False, timeout=30)
    assert response.status_code == 303
    replay = requests.get(mirror.url + "admin/", cookies={"indexguard_session": cookie}, allow_redirects=False, timeout=30)
    assert replay.status_code == 303  # the old cookie is dead on the server, not just in the browser


def test_revoking_a_token_ends_its_sessions(mirror, reviewer_token, admin_token) -> None:
    browser = sign_in(mirror, reviewer_token)
    assert browser.get(mirror.url + "admin/", allow_redirects=False, timeout=30).status_code == 200
    Api(mirror, admin_token).ok("DELETE", "tokens/rita")
    assert browser.get(mirror.url + "admin/", allow_redirects=False, timeout=30).status_code == 303


def test_search_and_audit_pages(mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    Api(mirror, reviewer_token).ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": "<b>bold</b> reason"})
    browser = sign_in(mirror, reviewer_token)
    found = browser.get(mirror.url + "admin/projects", params={"q": "REQEU", "state": "denied"}, timeout=30)
    assert f'href="/admin/projects/{TYPOSQUAT}"' in found.text and "1 project." in found.text
    none = browser.get(mirror.url + "admin/projects", params={"q": "<i>x</i>"}, timeout=30)
    assert "0 projects." in none.text and "<i>x</i>" not in none.text and "&lt;i&gt;x&lt;/i&gt;" in none.text
    audit = browser.get(mirror.url + "admin/audit", timeout=30)
    assert "&lt;b&gt;bold&lt;/b&gt; reason" in audit.text and "<b>bold</b>" not in audit.text
    assert audit.text.index("&lt;b&gt;bold") < audit.text.index("<td>policy</td>")  # newest first
