"""The admin pages in real headless Chromium: sign in, work the queue, and stay safe from XSS.

Uses Debian's ``chromium`` through Playwright's Python package; no browser
is downloaded.  Skipped, saying why, when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review.support import TYPOSQUAT, XSS, Api, allowed, get, quarantine
from tests.support.publish import publish

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


PIP_AGENT = (
    'pip/24.0 {"ci":null,"cpu":"x86_64","distro":{"id":"jammy","libc":{"lib":"glibc","version":"2.35"},'
    '"name":"Ubuntu","version":"22.04"},"implementation":{"name":"CPython","version":"3.12.1"},'
    '"installer":{"name":"pip","version":"24.0"},"openssl_version":"OpenSSL 3.0.2 15 Mar 2022",'
    '"python":"3.12.1","rustc_version":"1.74.0","setuptools_version":"69.0.3",'
    '"system":{"name":"Linux","release":"6.5.0-14-generic"}}'
)


@pytest.mark.parametrize("width", [1400, 800])
def test_pages_fit_the_window(browser, width, mirror, index_server, tmp_path, reviewer_token) -> None:
    """At a laptop's and a half screen's width no page scrolls sideways, whatever the metadata."""
    publish(index_server, tmp_path, TYPOSQUAT, "1.0")
    index_server.set_project_info(TYPOSQUAT, summary=XSS + " " + "x" * 300, author=XSS)
    assert get(mirror, f"/simple/{TYPOSQUAT}/", headers={"User-Agent": PIP_AGENT}).status_code == 403
    quarantine(mirror, index_server, tmp_path, "djnago")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        sign_in(page, mirror, reviewer_token)
        for label, path in (("queue", "admin/"), ("project", f"admin/projects/{TYPOSQUAT}"),
                            ("projects", "admin/projects"), ("audit", "admin/audit?routine=show")):
            page.goto(mirror.url + path)
            shot = tmp_path / f"{label}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], (label, width, widths)
            assert page.evaluate("typeof window.__xss") == "undefined"
        page.goto(mirror.url + f"admin/projects/{TYPOSQUAT}")
        card = page.locator(".panel", has=page.get_by_role("heading", name="Ages"))
        assert card.bounding_box()["width"] < 420  # the user agent no longer stretches the card
        assert "Installer" in card.inner_text() and "pip 24.0" in card.inner_text()
        refused = page.locator(".panel", has=page.get_by_role("heading", name="Clients refused"))
        assert refused.bounding_box()["width"] < 420  # parsed and compact here too
        assert "1 distinct client was refused" in refused.inner_text() and "pip 24.0" in refused.inner_text()
        assert page.locator("svg").count() == 0 or page.locator("svg script").count() == 0
    finally:
        context.close()


def test_tick_releases_and_decide_them_with_one_reason(page, mirror, index_server, tmp_path, reviewer_token) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "1.9", "1.10")
    sign_in(page, mirror, reviewer_token)
    page.goto(mirror.url + "admin/projects/quiet-otter")
    versions = page.locator('input[name="version"]')
    assert [versions.nth(i).get_attribute("value") for i in range(versions.count())] == ["1.10", "1.9", "1.0"]
    page.get_by_label("Select 1.10").check()
    page.get_by_label("Select 1.9").check()
    page.get_by_label("Reason for the selected releases").fill("built from a compromised CI runner")
    page.get_by_role("button", name="Deny selected").click()
    page.wait_for_url("**/admin/projects/quiet-otter?done=releases-denied")
    assert page.get_by_role("status").inner_text() == "Selected releases denied."
    states = page.locator("#releases ~ form table tbody tr td:nth-child(3)")
    assert [states.nth(i).inner_text().strip() for i in range(3)] == ["denied", "denied", "allowed"]
    assert page.locator("svg").count() == 0  # no chart on a project page


def test_queue_chart_renders_without_script(page, mirror, index_server, tmp_path, reviewer_token, clock) -> None:
    quarantine(mirror, index_server, tmp_path, "djnago")
    clock.advance(days=1)
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT)
    sign_in(page, mirror, reviewer_token)
    chart = page.locator("svg.activity")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 60
    assert page.locator("svg.activity rect").count() == 60
    assert page.locator("script").count() == 0
