"""What a reviewer reads on the admin pages: evidence in words, downloads side by side, releases in
version order a page at a time, one decision over many releases, and honest "not checked" states.

Every test talks HTTP to a running mirror in front of the local upstream index.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import requests as http
from markupsafe import escape
from packaging.version import Version
from sqlalchemy import select

from mirror.db.models import AuditRun, Decision, PinnedFile, Project, Release, Snapshot
from mirror.review.namediff import align
from mirror.review.upstream_info import UpstreamInfoCache
from mirror.review.useragent import parse_user_agent
from mirror.screening.decisions import decide_release
from tests.review.support import TYPOSQUAT, XSS, allowed, get, make_token, quarantine
from tests.review.test_pages import _csrf, sign_in
from tests.support.dists import build_wheel
from tests.support.publish import publish

PIP_UA = (
    'pip/24.0 {"ci":null,"cpu":"x86_64","distro":{"id":"jammy","libc":{"lib":"glibc","version":"2.35"},'
    '"name":"Ubuntu","version":"22.04"},"implementation":{"name":"CPython","version":"3.12.1"},'
    '"installer":{"name":"pip","version":"24.0"},"openssl_version":"OpenSSL 3.0.2 15 Mar 2022",'
    '"python":"3.12.1","rustc_version":"1.74.0","setuptools_version":"69.0.3",'
    '"system":{"name":"Linux","release":"6.5.0-14-generic"}}'
)
UV_UA = (
    'uv/0.4.18 {"installer":{"name":"uv","version":"0.4.18"},"python":"3.11.9","implementation":'
    '{"name":"CPython","version":"3.11.9"},"distro":null,"system":{"name":"Darwin","release":"23.6.0"},'
    '"cpu":"arm64","openssl_version":null,"setuptools_version":null,"rustc_version":null,"ci":true}'
)


def _page(browser, mirror, path: str, **params):
    response = browser.get(mirror.url + path.lstrip("/"), params=params, timeout=30)
    assert response.status_code == 200, response.text[:2000]
    return response.text


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# -- pure helpers ------------------------------------------------------------------


def test_pip_and_uv_user_agents_are_four_short_facts() -> None:
    pip = parse_user_agent(PIP_UA)
    assert (pip.installer, pip.python, pip.system, pip.ci) == (
        "pip 24.0", "CPython 3.12.1", "Ubuntu 22.04 (Linux, x86_64)", False)
    uv = parse_user_agent(UV_UA)
    assert (uv.installer, uv.python, uv.system, uv.ci) == ("uv 0.4.18", "CPython 3.11.9", "Darwin, arm64", True)
    plain = parse_user_agent("curl/8.5.0")
    assert (plain.installer, plain.python, plain.ci) == ("curl/8.5.0", None, None)
    assert parse_user_agent("") is None and parse_user_agent(None) is None
    broken = parse_user_agent('pip/1 {"installer": ' + "x" * 5000)
    assert broken.installer == "pip/1" and len(broken.raw) <= 500
    long = parse_user_agent('pip/1 {"installer":{"name":"' + "a" * 300 + '"}}')
    assert len(long.installer) <= 80


def test_names_are_aligned_with_the_differences_marked() -> None:
    swap = align("reqeusts", "requests")
    assert "".join(c.text for c in swap.candidate) == "reqeusts"
    assert "".join(c.text for c in swap.target) == "requests"
    assert len(swap.candidate) == len(swap.target)
    assert [c.text for c in swap.candidate[:3]] == list("req") and not any(c.changed for c in swap.candidate[:3])
    assert [(c.text, c.changed) for c in swap.candidate[3:5]] == [("e", True), ("u", True)]  # the swap
    assert [(c.text, c.changed) for c in swap.target[3:5]] == [("u", True), ("e", True)]
    assert swap.changes == 2 and not any(c.changed for c in swap.candidate[5:])
    extra = align("djangoo", "django")
    assert len(extra.candidate) == len(extra.target) == 7
    assert [c.gap for c in extra.target].count(True) == 1 and extra.changes == 1
    assert "".join(c.text for c in extra.target if not c.gap) == "django"


# -- the project page ----------------------------------------------------------------


def test_evidence_is_said_in_words_with_both_names_aligned_and_both_download_counts(
    mirror, index_server, tmp_path, reviewer_token
) -> None:
    quarantine(mirror, index_server, tmp_path)
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    looks_like = page[page.index("<h3>Looks like</h3>"): page.index("<h3>Upstream says</h3>")]
    # The two names, column by column, with only the swapped letters marked.
    assert '<div class="mono line"><span>r</span><span>e</span><span>q</span>' in looks_like
    assert looks_like.count("<mark>") == 4  # 'eu' above 'ue'
    assert "<mark>e</mark><mark>u</mark>" in looks_like and "<mark>u</mark><mark>e</mark>" in looks_like
    # Downloads of both sides, neither "unknown": the target's count and the candidate's ceiling.
    text = _text(looks_like)
    corpus = mirror.services.detectors.corpus()
    assert f"{corpus.get('requests').downloads:,} a month" in text
    assert re.search(r"fewer than [\d,]+ a month \(not among the [\d,]+ listed\)", text), text
    assert "unknown" not in text
    findings = _text(page[page.index('id="findings"'): page.index('id="releases"')])
    assert "The name looks like requests" in findings and "edit" in findings and "is a popular project" in findings
    assert "target_kind" not in findings and "target kind" in findings  # raw keys only in the folded details


def test_requested_by_is_parsed_and_compact(mirror, index_server, tmp_path, reviewer_token) -> None:
    publish(index_server, tmp_path, TYPOSQUAT, "1.0")

    response = http.get(mirror.url + f"simple/{TYPOSQUAT}/", headers={"User-Agent": PIP_UA}, timeout=30)
    assert response.status_code == 403
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    card = page[page.index("<h3>Requested by</h3>"):]
    card = card[: card.index("</div>")]
    text = _text(card.split("<details>")[0])
    assert "Installer pip 24.0" in text and "Python CPython 3.12.1" in text
    assert "OS Ubuntu 22.04 (Linux, x86_64)" in text and "CI no" in text
    assert '"openssl_version"' not in card.split("<details>")[0]  # the JSON only behind "Full user agent"
    assert str(escape(PIP_UA))[:60] in card.split("<details>")[1]


def test_a_hostile_user_agent_is_shown_as_text(mirror, index_server, tmp_path, reviewer_token) -> None:
    publish(index_server, tmp_path, TYPOSQUAT, "1.0")
    agent = 'pip/1 {"installer":{"name":"<script>window.__xss=1</script>","version":"<b>1</b>"},"ci":true}'
    assert get(mirror, f"/simple/{TYPOSQUAT}/", headers={"User-Agent": agent}).status_code == 403
    page = _page(sign_in(mirror, reviewer_token), mirror, f"admin/projects/{TYPOSQUAT}")
    assert "<script>window.__xss" not in page and "<b>1</b>" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt; &lt;b&gt;1&lt;/b&gt;" in page


def test_releases_are_in_version_order_and_paged(mirror, index_server, tmp_path, reviewer_token) -> None:
    name = allowed(mirror, index_server, tmp_path, "quiet-otter", "3.9.0", "3.57.0", "3.10.0", "10.0.0a1")
    with mirror.services.sessions.begin() as session:
        for minor in range(120):
            decide_release(session, project=name, version=f"1.{minor}", action="allow", actor="policy",
                           reason="", now=mirror.clock())
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{name}")
    versions = re.findall(r'name="version" value="([^"]+)"', page)
    assert versions[:4] == ["10.0.0a1", "3.57.0", "3.10.0", "3.9.0"]
    assert versions == sorted(versions, key=Version, reverse=True) and len(versions) == 50
    assert page.count("<form") < 10  # one form for the selection, not one per release
    assert page.count('name="reason"') == 2  # the project's reason and the selection's reason
    assert "1–50 of 124" in page
    second = _page(browser, mirror, f"admin/projects/{name}", releases=50)
    assert re.findall(r'name="version" value="([^"]+)"', second)[0] == "1.73"
    last = _page(browser, mirror, f"admin/projects/{name}", releases=100)
    assert len(re.findall(r'name="version" value="', last)) == 24 and "Older releases" not in last


def test_an_openai_sized_release_list_stays_small(mirror, index_server, tmp_path, reviewer_token) -> None:
    """478 releases: the page carries 50 of them and one form, not 478 forms (373 KB before)."""
    name = allowed(mirror, index_server, tmp_path, "openai-like")
    with mirror.services.sessions.begin() as session:
        for i in range(477):
            decide_release(session, project=name, version=f"1.{i // 30}.{i % 30}", action="allow",
                           actor="policy", reason="", now=mirror.clock())
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{name}")
    assert "Releases (478)" in page
    assert len(page.encode()) < 60_000, len(page.encode())
    assert page.count('type="checkbox" name="version"') == 50


def test_one_reason_decides_a_selection_of_releases(mirror, index_server, tmp_path, reviewer_token) -> None:
    name = allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "1.1", "2.0")
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{name}")
    url = mirror.url + f"admin/projects/{name}/releases/decide"
    csrf = _csrf(page)
    nothing = browser.post(url, data={"csrf_token": csrf, "action": "deny", "reason": "bad"}, timeout=30)
    assert nothing.status_code == 400 and "select at least one release" in nothing.text
    forged = browser.post(url, data={"csrf_token": "x", "action": "deny", "reason": "r", "version": ["1.0"]},
                          allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    unknown = browser.post(url, data={"csrf_token": csrf, "action": "allow", "reason": "r", "version": ["1.0", "9.9"]},
                           timeout=30)
    assert unknown.status_code == 404 and "9.9" in unknown.text
    ok = browser.post(url, data={"csrf_token": csrf, "action": "deny", "reason": "compromised build host",
                                 "version": ["1.0", "1.1"]}, allow_redirects=False, timeout=30)
    assert ok.status_code == 303 and ok.headers["Location"].endswith("?done=releases-denied")
    with mirror.services.sessions() as session:
        states = {r.version: r.state for r in session.scalars(select(Release).where(Release.project == name))}
        decisions = list(session.scalars(select(Decision).where(Decision.project == name,
                                                                Decision.version.is_not(None))))
    assert states == {"1.0": "denied", "1.1": "denied", "2.0": "allowed"}  # the failed 9.9 attempt changed nothing
    assert {(d.version, d.reason, d.actor, d.request["bulk"]["count"]) for d in decisions} == {
        ("1.0", "compromised build host", "rita", 2), ("1.1", "compromised build host", "rita", 2)}
    assert all(d.request["previous"]["state"] == "allowed" for d in decisions)  # each can be undone


def test_held_releases_are_grouped_and_approved_up_to_a_version(
    start_mirror, index_server, tmp_path, reviewer_token_for
) -> None:
    mirror = start_mirror(policy={"cooldown_hours": 24 * 7})
    reviewer = reviewer_token_for(mirror)
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    for version in ("1.1", "1.2", "1.10", "2.0"):
        publish(index_server, tmp_path, "quiet-otter", version, age=timedelta(hours=2))
    assert get(mirror, "/simple/quiet-otter/").status_code == 200
    with mirror.services.sessions() as session:
        held = sorted(r.version for r in session.scalars(select(Release).where(Release.state == "held")))
    assert held == ["1.1", "1.10", "1.2", "2.0"]
    browser = sign_in(mirror, reviewer)
    queue = _page(browser, mirror, "admin/")
    group = _text(queue[queue.index('id="releases"'):])
    assert "quiet-otter 4 held: 1.1 … 2.0" in group
    assert queue.count('action="/admin/projects/quiet-otter/releases/approve-held"') == 1
    url = mirror.url + "admin/projects/quiet-otter/releases/approve-held"
    bad = browser.post(url, data={"csrf_token": _csrf(queue), "up_to": "not a version", "reason": "r"}, timeout=30)
    assert bad.status_code == 400 and "not a valid version" in bad.text
    ok = browser.post(url, data={"csrf_token": _csrf(queue), "up_to": "1.10", "reason": "diffed, fine"},
                      allow_redirects=False, timeout=30)
    assert ok.status_code == 303
    with mirror.services.sessions() as session:
        states = {r.version: r.state for r in session.scalars(select(Release).where(Release.project == "quiet-otter"))}
    assert states == {"1.0": "allowed", "1.1": "allowed", "1.2": "allowed", "1.10": "allowed", "2.0": "held"}
    files = get(mirror, "/simple/quiet-otter/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert any("1.10" in f["filename"] for f in files["files"]) and not any("-2.0-" in f["filename"] for f in files["files"])


def test_vulnerabilities_without_a_service_say_so(mirror, index_server, tmp_path, reviewer_token) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter")  # the test settings say vulnerability_service = "none"
    page = _text(_page(sign_in(mirror, reviewer_token), mirror, "admin/projects/quiet-otter"))
    assert "Not checked (no vulnerability service is configured)" in page and "None known" not in page


def test_vulnerabilities_say_not_checked_when_the_service_failed(
    start_mirror, index_server, tmp_path, reviewer_token_for
) -> None:
    mirror = start_mirror(audit={"interval_hours": 0, "vulnerability_service": "osv"})
    name = allowed(mirror, index_server, tmp_path, "quiet-otter")
    browser = sign_in(mirror, reviewer_token_for(mirror))
    never = _text(_page(browser, mirror, f"admin/projects/{name}"))
    assert "Not checked (no audit has run yet)" in never and "None known" not in never
    started = mirror.clock() - timedelta(minutes=5)
    with mirror.services.sessions.begin() as session:
        session.add(AuditRun(started_at=started, finished_at=mirror.clock(), trigger="command", errors=1,
                             details={"errors": [f"{name}: vulnerability service failed for 1.0: "
                                                 "ConnectionError: osv.dev unreachable"]}))
    failed = _text(_page(browser, mirror, f"admin/projects/{name}"))
    assert f"Not checked (service unreachable at {started:%Y-%m-%d %H:%M} UTC)" in failed
    assert "None known" not in failed
    with mirror.services.sessions.begin() as session:
        session.add(AuditRun(started_at=mirror.clock(), finished_at=mirror.clock(), trigger="command", errors=0,
                             details={"errors": []}))
    checked = _text(_page(browser, mirror, f"admin/projects/{name}"))
    assert "None known (checked" in checked and "Not checked" not in checked


def test_a_break_glass_allow_says_until_when(mirror, index_server, tmp_path, reviewer, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "incident 42", "hours": 2})
    until = mirror.clock() + timedelta(hours=2)
    browser = sign_in(mirror, reviewer_token)
    for path in (f"admin/projects/{TYPOSQUAT}", "admin/", "admin/projects"):
        page = _page(browser, mirror, path)
        assert '<span class="badge state-breakglass"' in page, path
        assert f"allowed until {until:%Y-%m-%d %H:%M} UTC" in page, path
    project = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    heading = project[project.index("<h1>"): project.index("</h1>")]
    assert "state-breakglass" in heading and "state-allowed" not in heading


def test_upstream_says_what_screening_stored_and_can_ask_again(
    mirror, index_server, tmp_path, reviewer_token
) -> None:
    quarantine(mirror, index_server, tmp_path, summary="HTTP for humans, live")
    with mirror.services.sessions.begin() as session:
        session.add(Snapshot(project=TYPOSQUAT, taken_at=mirror.clock(), facts={
            "roles": {"maintainer-one": "Owner"},
            "upstream": {"fields": {"summary": "kept at screening " + XSS, "home_page": "https://example.invalid/"},
                         "owners": {}, "project_urls": {"Source": "https://example.invalid/src"}}}))
        # A later audit snapshot re-records ownership only; it must not hide what screening saw.
        session.add(Snapshot(project=TYPOSQUAT, taken_at=mirror.clock() + timedelta(seconds=1),
                             facts={"roles": {"maintainer-one": "Owner"}}))
    browser = sign_in(mirror, reviewer_token)
    page = _page(browser, mirror, f"admin/projects/{TYPOSQUAT}")
    card = page[page.index("<h3>Upstream says</h3>"): page.index("<h3>Ages</h3>")]
    assert "As screening saw it" in card and "kept at screening" in card and "Unavailable" not in card
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "https://example.invalid/src" in card and "<a href=\"https://example.invalid" not in card
    refreshed = browser.post(mirror.url + f"admin/projects/{TYPOSQUAT}/upstream/refresh",
                             data={"csrf_token": _csrf(page)}, timeout=30)
    assert refreshed.status_code == 200 and "Asked upstream" in refreshed.text
    assert "HTTP for humans, live" in refreshed.text and "kept at screening" not in refreshed.text


def test_upstream_info_uses_the_mirrors_session_and_its_ca_bundle(mirror) -> None:
    cache = UpstreamInfoCache.for_services(mirror.services)
    assert cache.client.session is mirror.services.upstream.session
    assert cache.client.session.verify == mirror.services.settings.ca_bundle


def test_internal_uploads_have_a_page(start_mirror, reviewer_token_for, tmp_path) -> None:
    mirror = start_mirror(internal={"names": ["corp-tool"], "upload_token": "s3cret"})
    reviewer = reviewer_token_for(mirror)

    wheel = build_wheel(tmp_path, "corp-tool", "1.2")
    with open(wheel, "rb") as handle:
        response = http.post(mirror.url + "legacy/", auth=("__token__", "s3cret"),
                             data={":action": "file_upload", "name": "corp-tool"},
                             files={"content": (wheel.name, handle)}, timeout=30)
    assert response.status_code == 200, response.text
    with mirror.services.sessions() as session:
        pin = session.scalars(select(PinnedFile).where(PinnedFile.project == "corp-tool")).one()
        assert session.get(Project, "corp-tool") is None  # never screened
    browser = sign_in(mirror, reviewer)
    page = _page(browser, mirror, "admin/projects/corp-tool")
    text = _text(page)
    assert "Not screened" not in text and wheel.name in text and pin.sha256 in text
    assert "uploaded with the upload token" in text and f"{pin.upload_time:%Y-%m-%d %H:%M} UTC" in text
    assert "s3cret" not in page
    listed = _page(browser, mirror, "admin/projects", q="corp")
    assert 'href="/admin/projects/corp-tool"' in listed and "Internal projects" in listed


def test_audit_log_hides_routine_allows_and_filters(mirror, index_server, tmp_path, reviewer, reviewer_token) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter")
    quarantine(mirror, index_server, tmp_path)
    reviewer.ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": "typosquat of requests"})
    browser = sign_in(mirror, reviewer_token)
    default = _page(browser, mirror, "admin/audit")
    assert "quiet-otter" not in default and "typosquat of requests" in default
    shown = _page(browser, mirror, "admin/audit", routine="show")
    assert "quiet-otter" in shown
    by_actor = _text(_page(browser, mirror, "admin/audit", actor="rita", routine="show"))
    assert "typosquat of requests" in by_actor and "quiet-otter" not in by_actor and "policy" not in by_actor.split("entr")[1]
    by_action = _page(browser, mirror, "admin/audit", action="review")
    assert "<strong>review</strong>" in by_action and "<strong>deny</strong>" not in by_action
    by_detector = _page(browser, mirror, "admin/audit", detector="typosquat", routine="show")
    assert TYPOSQUAT in by_detector and "quiet-otter" not in by_detector
    assert '<option value="typosquat" selected>' in by_detector


def test_queue_filters_counts_clients_and_says_each_sentence_once(
    mirror, index_server, tmp_path, reviewer_token, clock
) -> None:
    quarantine(mirror, index_server, tmp_path, "djnago")
    clock.advance(days=2)
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT)
    browser = sign_in(mirror, reviewer_token)
    queue = _page(browser, mirror, "admin/")
    rows = queue[queue.index('id="projects"'): queue.index('id="releases"')]
    for row in rows.split("<tr>")[2:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        why, findings = _text(cells[2]), _text(cells[3])
        assert why and why not in findings  # the sentence is in "Why" only
        assert _text(cells[4]) == "1"  # one client asked
    old = _page(browser, mirror, "admin/", age="1d")
    assert "djnago" in old and f">{TYPOSQUAT}<" not in old
    assert '<option value="1d" selected>' in old
    none = _page(browser, mirror, "admin/", detector="maintainers")
    assert "Nothing quarantined matches the filter." in none
    high = _page(browser, mirror, "admin/", detector="typosquat", severity="low")
    assert "djnago" not in high or "low" in high


def test_queue_chart_is_inline_svg_without_script(mirror, index_server, tmp_path, reviewer_token, clock) -> None:
    quarantine(mirror, index_server, tmp_path, "djnago")
    clock.advance(days=40)  # before the chart's window: it only counts in the queue size
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT)
    browser = sign_in(mirror, reviewer_token)
    response = browser.get(mirror.url + "admin/", timeout=30)
    svg = response.text[response.text.index("<svg"): response.text.index("</svg>")]
    assert "<script" not in svg and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert svg.count("<rect") == 2 * 30
    numbers = _text(response.text[response.text.index("<summary>The numbers</summary>"):])
    today, first = clock.now, clock.now - timedelta(days=29)
    assert f"{today:%Y-%m-%d} 0 1 2" in numbers and f"{first:%Y-%m-%d} 0 0 1" in numbers
    assert f"{(clock.now - timedelta(days=30)):%Y-%m-%d}" not in numbers
    assert "script-src" not in response.headers["Content-Security-Policy"]


@pytest.fixture
def reviewer_token_for():
    """A reviewer token for a mirror the test starts itself (``reviewer_token`` needs the default one)."""
    return lambda mirror: make_token(mirror, "reviewer", "rita")
