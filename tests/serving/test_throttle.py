"""Unknown names cost upstream once per TTL, and one client's first screenings are bounded."""

from __future__ import annotations

import requests

from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def get(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def page_requests(index_server, name: str) -> int:
    return sum(1 for r in index_server.requests if r.path.startswith(f"/simple/{name}/"))


def test_not_found_is_remembered_briefly(start_mirror, index_server, clock, tmp_path) -> None:
    mirror = start_mirror(upstream={"not_found_ttl": 30})
    for _ in range(5):
        assert get(mirror, "no-such-otter").status_code == 404
    assert page_requests(index_server, "no-such-otter") == 1
    publish(index_server, tmp_path, "no-such-otter")
    assert get(mirror, "no-such-otter").status_code == 404  # still remembered
    clock.advance(seconds=31)
    assert get(mirror, "no-such-otter").status_code == 200
    assert page_requests(index_server, "no-such-otter") == 2


def test_one_client_cannot_screen_without_bound(start_mirror, index_server, clock, tmp_path) -> None:
    mirror = start_mirror(server={"screenings_per_client_per_minute": 3}, upstream={"not_found_ttl": 0})
    for i in range(3):
        assert get(mirror, f"random-name-{i}").status_code == 404
    limited = get(mirror, "random-name-3")
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert page_requests(index_server, "random-name-3") == 0
    publish(index_server, tmp_path, "quiet-otter")
    clock.advance(seconds=61)
    assert get(mirror, "quiet-otter").status_code == 200
    assert get(mirror, "quiet-otter").status_code == 200  # screened names cost no budget
