"""The admin pages in real headless Chromium: sign in, work the queue, and stay safe from XSS.

Uses Debian's ``chromium`` through Playwright's Python package; no browser
is downloaded.  Skipped, saying why, when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review.support import TYPOSQUAT, XSS, Api, get, quarantine

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, java_script_enabled=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def sign_in(page, mirror, token: str) -> None:
    page.goto(mirror.url + "admin/")
    assert "/admin/login" in page.url
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(mirror.url + "admin/")


def test_sign_in_and_work_the_queue(page, mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path, "djnago")
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT)
    sign_in(page, mirror, reviewer_token)
    assert page.get_by_role("heading", name="Review queue").is_visible()
    rows = page.locator("table").first.locator("tbody tr")
    assert [r.locator("td").first.inner_text().strip() for r in rows.all()] == ["djnago", TYPOSQUAT]
    cookie = next(c for c in page.context.cookies() if c["name"] == "indexguard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != reviewer_token

    # Deny the typosquat, with the keyboard only.
    page.get_by_role("link", name=TYPOSQUAT).click()
    evidence = Api(mirror, reviewer_token).ok("GET", f"projects/{TYPOSQUAT}")["findings"][0]["evidence"]
    looks_like = page.locator(".panel", has=page.get_by_role("heading", name="Looks like")).inner_text()
    assert "requests" in looks_like and f"{evidence['target_downloads']:,}" in looks_like
    reason = page.get_by_label("Reason (required; recorded in the audit log)")
    reason.focus()
    page.keyboard.type("one transposition from requests")
    page.keyboard.press("Tab")  # break-glass hours
    page.keyboard.press("Tab")  # Allow
    page.keyboard.press("Tab")  # Deny
    assert page.evaluate("document.activeElement.textContent.trim()") == f"Deny {TYPOSQUAT}"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/admin/projects/{TYPOSQUAT}?done=denied")
    assert page.get_by_role("status").inner_text() == "Denied."
    assert page.locator("h1 .badge").inner_text() == "denied"
    assert "is denied" in get(mirror, f"/simple/{TYPOSQUAT}/").text

    # Allow the other one from the queue.
    page.get_by_role("link", name="Queue (1)").click()
    page.get_by_role("link", name="djnago").click()
    page.get_by_label("Reason (required; recorded in the audit log)").fill("internal fork, reviewed by security")
    page.get_by_role("button", name="Allow djnago").click()
    page.wait_for_url("**/admin/projects/djnago?done=allowed")
    assert page.locator("h1 .badge").inner_text() == "allowed"
    assert get(mirror, "/simple/djnago/").status_code == 200

    page.get_by_role("link", name="Audit log").click()
    audit = page.locator("table tbody").inner_text()
    assert "internal fork, reviewed by security" in audit and "one transposition from requests" in audit
    assert audit.count("rita") == 2
    history = Api(mirror, reviewer_token).ok("GET", "audit")["entries"]
    assert [(e["project"], e["action"], e["actor"]) for e in history[:2]] == [
        ("djnago", "allow", "rita"), (TYPOSQUAT, "deny", "rita")]


def test_package_metadata_cannot_run_script(page, mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT, summary=XSS, author=XSS, maintainer=XSS)
    Api(mirror, reviewer_token).ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": XSS})
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    sign_in(page, mirror, reviewer_token)
    for path in (f"admin/projects/{TYPOSQUAT}", "admin/audit", f"admin/projects?q={TYPOSQUAT}", "admin/"):
        page.goto(mirror.url + path)
        assert page.evaluate("typeof window.__xss") == "undefined", path
        assert page.locator("script").count() == 0 and page.locator("img").count() == 0, path
    page.goto(mirror.url + f"admin/projects/{TYPOSQUAT}")
    upstream = page.locator(".panel", has=page.get_by_role("heading", name="Upstream says"))
    assert upstream.inner_text().count(XSS) == 3  # summary, author, maintainer: shown as text
    assert page.get_by_text(XSS).count() >= 4  # and the reason, in the decisions table
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_a_csrf_less_form_from_another_page_is_refused(page, mirror, index_server, tmp_path, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    sign_in(page, mirror, reviewer_token)
    # A form like one a hostile page would post, without the session's token.
    page.set_content(
        f'<form method="post" action="{mirror.url}admin/projects/{TYPOSQUAT}/decide">'
        '<input name="action" value="allow"><input name="reason" value="pwned"><button>go</button></form>'
    )
    page.get_by_role("button", name="go").click()
    page.wait_for_load_state()
    assert Api(mirror, reviewer_token).ok("GET", f"projects/{TYPOSQUAT}")["project"]["state"] == "quarantined"
