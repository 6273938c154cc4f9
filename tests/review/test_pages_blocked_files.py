"""A file upstream changed or removed is listed on its project page, and a reviewer releases it there."""

from __future__ import annotations

import requests

from tests.review.support import make_token
from tests.review.test_pages import _csrf, sign_in
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def test_a_reviewer_releases_a_file_upstream_removed_from_the_project_page(mirror, index_server, clock, tmp_path) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter")[0]
    page = requests.get(mirror.simple_url + "quiet-otter/", headers={"Accept": JSON}, timeout=30).json()
    url = requests.compat.urljoin(mirror.simple_url + "quiet-otter/", page["files"][0]["url"])
    assert requests.get(url, timeout=30).status_code == 200
    index_server.remove_file(wheel.filename)
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    requests.get(mirror.simple_url + "quiet-otter/", timeout=30)
    assert requests.get(url, timeout=30).status_code == 403

    browser = sign_in(mirror, make_token(mirror, "reviewer", "rita"))
    project = browser.get(mirror.url + "admin/projects/quiet-otter", timeout=30)
    assert "Files not served" in project.text and wheel.filename in project.text and wheel.sha256 in project.text
    action = mirror.url + f"admin/projects/quiet-otter/files/{wheel.filename}/unblock"
    missing = browser.post(action, data={"reason": " ", "csrf_token": _csrf(project.text)}, timeout=30)
    assert missing.status_code == 400 and requests.get(url, timeout=30).status_code == 403
    forged = browser.post(action, data={"reason": "checked", "csrf_token": "forged"}, timeout=30)
    assert forged.status_code == 403 and requests.get(url, timeout=30).status_code == 403
    done = browser.post(action, data={"reason": "a mistaken removal", "csrf_token": _csrf(project.text)}, timeout=30)
    assert done.status_code == 200 and "pinned bytes are served again" in done.text
    assert "Files not served" not in done.text
    assert requests.get(url, timeout=30).status_code == 200
