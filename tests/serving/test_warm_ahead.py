"""A served wheel's requirements are screened and built before its client asks for them.

A resolver asks for the pages of a wheel's requirements right after the
wheel; ``[server] warm_ahead`` prepares them in the background meanwhile,
through the same gate and budget as the client's own requests.
"""

from __future__ import annotations

import time

import requests

from sqlalchemy import select

from mirror.db.models import Decision, Page
from tests.serving.test_gate import file_urls
from tests.support.clients import pip
from tests.support.publish import publish

REQUIRES = [
    "tidy-otter>=1.0",
    "Tidy_Otter[fast]",  # the same project again: asked for once
    "brisk-lynx; python_version >= '3'",
    "spare-vole; extra == 'docs'",  # a plain install does not take it
    "far-gecko; sys_platform == 'nonesuch'",  # false everywhere
]


def publish_app(index_server, tmp_path) -> str:
    for name in ("tidy-otter", "brisk-lynx", "spare-vole", "far-gecko"):
        publish(index_server, tmp_path, name, "1.0")
    (app,) = publish(index_server, tmp_path, "needy-app", "2.0", requires_dist=REQUIRES)
    return app.filename


def pages_stored(mirror) -> set[str]:
    with mirror.services.sessions() as session:
        return set(session.scalars(select(Page.project)))


def page_requests(index_server, name: str) -> int:
    return sum(1 for r in index_server.requests if r.path.startswith(f"/simple/{name}/"))


def wait_until(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def download_wheel(mirror, project: str) -> None:
    (url,) = file_urls(mirror, project)
    assert requests.get(url, timeout=30).status_code == 200


def test_the_requirements_of_a_served_wheel_are_screened_before_the_client_asks(start_mirror, index_server, tmp_path) -> None:
    app = publish_app(index_server, tmp_path)
    mirror = start_mirror(server={"warm_ahead": 16})
    download_wheel(mirror, "needy-app")
    assert wait_until(lambda: {"tidy-otter", "brisk-lynx"} <= pages_stored(mirror)), pages_stored(mirror)
    time.sleep(0.3)
    assert pages_stored(mirror) == {"needy-app", "tidy-otter", "brisk-lynx"}  # no extra, no false marker
    assert page_requests(index_server, "spare-vole") == page_requests(index_server, "far-gecko") == 0
    with mirror.services.sessions() as session:
        (decision,) = session.scalars(select(Decision).where(Decision.project == "tidy-otter"))
    assert decision.request["ahead_of"] == app  # the reviewer sees what the screening was a guess from

    # The client's own requests find them built: upstream is not asked again.
    before = page_requests(index_server, "tidy-otter")
    done = pip(tmp_path, "download", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url, "needy-app")
    assert done.returncode == 0, done.stdout + done.stderr
    assert page_requests(index_server, "tidy-otter") == before == 1


def test_warm_ahead_keeps_to_its_bound_and_zero_switches_it_off(start_mirror, index_server, tmp_path) -> None:
    publish_app(index_server, tmp_path)
    bounded = start_mirror(server={"warm_ahead": 1})
    with index_server.fault("tidy-otter", "hang", seconds=3):
        download_wheel(bounded, "needy-app")
        assert wait_until(lambda: page_requests(index_server, "tidy-otter") >= 1)
        time.sleep(0.5)
        assert page_requests(index_server, "brisk-lynx") == 0  # the one place is taken: not queued
    assert wait_until(lambda: "tidy-otter" in pages_stored(bounded))
    assert "brisk-lynx" not in pages_stored(bounded)

    publish(index_server, tmp_path, "quiet-mole", "1.0")
    publish(index_server, tmp_path, "lone-app", "1.0", requires_dist=["quiet-mole"])
    off = start_mirror(server={"warm_ahead": 0})  # same database, own storage
    download_wheel(off, "lone-app")
    time.sleep(1.0)
    assert "quiet-mole" not in pages_stored(off) and page_requests(index_server, "quiet-mole") == 0


def test_warm_ahead_never_asks_upstream_for_an_internal_name(start_mirror, index_server, tmp_path) -> None:
    publish_app(index_server, tmp_path)
    mirror = start_mirror(server={"warm_ahead": 16}, internal={"patterns": ["tidy-*"]})
    download_wheel(mirror, "needy-app")
    assert wait_until(lambda: "brisk-lynx" in pages_stored(mirror))
    time.sleep(0.3)
    assert page_requests(index_server, "tidy-otter") == 0
    assert "tidy-otter" not in pages_stored(mirror)


def test_warm_ahead_spends_the_clients_screening_budget(start_mirror, index_server, tmp_path) -> None:
    publish_app(index_server, tmp_path)
    mirror = start_mirror(server={"warm_ahead": 16, "screenings_per_client_per_minute": 2})
    download_wheel(mirror, "needy-app")  # one screening of the two
    assert wait_until(lambda: len(pages_stored(mirror)) == 2)
    time.sleep(0.5)
    assert len(pages_stored(mirror) - {"needy-app"}) == 1  # the other requirement met the budget


def test_reading_core_metadata_warms_the_requirements_without_the_wheel(start_mirror, index_server, tmp_path) -> None:
    app = publish_app(index_server, tmp_path)
    mirror = start_mirror(server={"warm_ahead": 16})
    (url,) = file_urls(mirror, "needy-app")
    assert requests.get(url + ".metadata", timeout=30).status_code == 200
    assert wait_until(lambda: {"tidy-otter", "brisk-lynx"} <= pages_stored(mirror)), pages_stored(mirror)
    assert index_server.download_count(app) == 0  # resolved from the metadata alone
