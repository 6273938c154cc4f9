"""The ``[review]`` keys: checked at start (naming the key, exit 2, nothing created) and obeyed by the pages.

The page tests run a real mirror in front of the local upstream with a small value
of each key and check that the value, not the default, shaped the answer.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mirror.config import SettingsError, load_settings
from mirror.db.models import Decision, Release
from mirror.review.settings import ReviewSettings
from mirror.screening.decisions import decide_release
from mirror.sections import check_sections
from tests.review.support import allowed, get, make_token
from tests.review.test_pages import _csrf, sign_in
from tests.review.test_pages_review import _page
from tests.support.publish import publish


@pytest.mark.parametrize(
    "text, key",
    [
        ("releases_per_page = 0", "review.releases_per_page"),
        ("releases_per_page = 'many'", "review.releases_per_page"),
        ("releases_per_page = true", "review.releases_per_page"),
        ("max_bulk_releases = -1", "review.max_bulk_releases"),
        ("max_bulk_releases = 2.5", "review.max_bulk_releases"),
        ("chart_days = 0", "review.chart_days"),
        ("chart_days = 400", "review.chart_days"),
        ("refusals_retention_days = 0", "review.refusals_retention_days"),
        ("require_client_auth = 'yes'", "review.require_client_auth"),
        ("session_hours = 0", "review.session_hours"),
        ("releases_per_pag = 10", "review.releases_per_pag"),
    ],
)
def test_bad_review_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[review]\n{text}\n")
    with pytest.raises(SettingsError) as caught:
        check_sections(load_settings(path))
    assert caught.value.key == key
    assert str(caught.value).count(key) == 1  # the key once, not twice


def test_review_keys_are_read() -> None:
    settings = ReviewSettings.from_mapping(
        {"releases_per_page": 7, "max_bulk_releases": 3, "chart_days": 9, "refusals_retention_days": 2}
    )
    assert (settings.releases_per_page, settings.max_bulk_releases, settings.chart_days,
            settings.refusals_retention_days) == (7, 3, 9, 2)
    assert ReviewSettings.from_mapping({}).releases_per_page == 50


def test_serve_with_a_bad_review_key_exits_2_before_creating_anything(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[review]\nmax_bulk_releases = 0\n")
    storage = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "mirror.cli", "serve", "--config", str(path), "--storage", str(storage)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "review.max_bulk_releases" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not storage.exists()


def test_releases_per_page_paginates(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(review={"releases_per_page": 3})
    name = allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "10.0")
    browser = sign_in(mirror, make_token(mirror, "reviewer", "rita"))
    first = _page(browser, mirror, f"admin/projects/{name}")
    assert re.findall(r'name="version" value="([^"]+)"', first) == ["10.0", "2.1", "2.0"]
    assert "1–3 of 7" in first and f"?releases=3#releases" in first
    last = _page(browser, mirror, f"admin/projects/{name}", releases=6)
    assert re.findall(r'name="version" value="([^"]+)"', last) == ["1.0"] and "Older releases" not in last


def test_max_bulk_releases_refuses_a_bigger_selection_whole(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(review={"max_bulk_releases": 2})
    name = allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "1.1", "1.2")
    browser = sign_in(mirror, make_token(mirror, "reviewer", "rita"))
    csrf = _csrf(_page(browser, mirror, f"admin/projects/{name}"))
    url = mirror.url + f"admin/projects/{name}/releases/decide"
    too_many = browser.post(url, data={"csrf_token": csrf, "action": "deny", "reason": "bad build",
                                       "version": ["1.0", "1.1", "1.2"]}, timeout=30)
    assert too_many.status_code == 400 and "at most 2 releases can be decided at once, not 3" in too_many.text
    with mirror.services.sessions() as session:
        assert set(session.scalars(select(Release.state).where(Release.project == name))) == {"allowed"}
        assert session.scalar(select(Decision.id).where(Decision.actor == "rita")) is None
    two = browser.post(url, data={"csrf_token": csrf, "action": "deny", "reason": "bad build",
                                  "version": ["1.0", "1.1"]}, allow_redirects=False, timeout=30)
    assert two.status_code == 303


def test_max_bulk_releases_bounds_approving_held_releases(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(policy={"cooldown_hours": 24 * 7}, review={"max_bulk_releases": 2})
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    for version in ("1.1", "1.2", "1.3"):
        publish(index_server, tmp_path, "quiet-otter", version, age=timedelta(hours=2))
    assert get(mirror, "/simple/quiet-otter/").status_code == 200
    browser = sign_in(mirror, make_token(mirror, "reviewer", "rita"))
    csrf = _csrf(_page(browser, mirror, "admin/"))
    url = mirror.url + "admin/projects/quiet-otter/releases/approve-held"
    refused = browser.post(url, data={"csrf_token": csrf, "up_to": "1.3", "reason": "diffed"}, timeout=30)
    assert refused.status_code == 400 and "3 held releases are at or below 1.3; at most 2 at once" in refused.text
    with mirror.services.sessions() as session:
        held = sorted(session.scalars(select(Release.version).where(Release.state == "held")))
    assert held == ["1.1", "1.2", "1.3"]  # refused whole, not cut to the first two
    ok = browser.post(url, data={"csrf_token": csrf, "up_to": "1.2", "reason": "diffed"},
                      allow_redirects=False, timeout=30)
    assert ok.status_code == 303


def test_chart_days_sets_the_charts_width(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(review={"chart_days": 7})
    name = allowed(mirror, index_server, tmp_path, "quiet-otter")
    with mirror.services.sessions.begin() as session:
        decide_release(session, project=name, version="1.0", action="deny", actor="rita", reason="r",
                       now=mirror.clock())
    page = _page(sign_in(mirror, make_token(mirror, "reviewer", "rita")), mirror, "admin/")
    svg = page[page.index("<svg"): page.index("</svg>")]
    assert svg.count("<rect") == 2 * 7 and "Last 7 days" in page


def test_the_refusal_recorders_bounds_are_review_settings(start_mirror) -> None:
    mirror = start_mirror(review={"refusals_max_waiting": 7, "refusals_max_clients": 3})
    recorder = mirror.app.state.refusals
    assert (recorder.max_pending, recorder.max_clients) == (7, 3)
    for index in range(10):
        recorder.record(project="reqeusts", client=f"10.0.0.{index}")
    assert recorder.dropped == 3  # past the waiting bound: dropped and logged, never unbounded
