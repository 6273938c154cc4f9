"""A release's dependencies screened as soon as a client has read its metadata, before it asks for them."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import requests

from mirror.simple.metadata import dependency_names
from tests.support.dists import build_wheel
from tests.support.publish import ESTABLISHED, publish
from tests.support.waiting import wait_until

JSON = "application/vnd.pypi.simple.v1+json"
DEPENDENCIES = ["dep-one", "dep-two", "dep-three"]


def publish_root(index_server, tmp_path, *, metadata: bool = True) -> None:
    path = build_wheel(tmp_path / "dists", "root-otter", "1.0",
                       requires_dist=[*DEPENDENCIES, "dep-extra; extra == 'fast'", "dep-one>=1"])
    index_server.add_file("root-otter", path, upload_time=datetime.now(timezone.utc) - ESTABLISHED, metadata=metadata)
    index_server.set_project_info("root-otter", owners={"maintainer-one": "Owner"})
    for name in [*DEPENDENCIES, "dep-extra"]:
        publish(index_server, tmp_path, name)


def read_metadata(mirror) -> None:
    page = requests.get(mirror.simple_url + "root-otter/", headers={"Accept": JSON}, timeout=30).json()
    url = requests.compat.urljoin(mirror.simple_url + "root-otter/", page["files"][0]["url"])
    response = requests.get(url + ".metadata", timeout=30)
    assert response.status_code == 200 and b"Requires-Dist: dep-two" in response.content


def screened(mirror, name: str) -> bool:
    return mirror.services.screening.project_row(name) is not None


def test_reading_metadata_screens_the_dependencies_up_to_the_limit(start_mirror, index_server, tmp_path) -> None:
    publish_root(index_server, tmp_path)
    mirror = start_mirror(server={"screen_ahead": 2})
    read_metadata(mirror)
    # Screened and built too (the decision is stored before the page): the client's request finds both.
    assert wait_until(lambda: all(screened(mirror, n) and mirror.services.pages.has_page(n) for n in DEPENDENCIES[:2]))
    time.sleep(0.5)  # give a third screening, were there one, the time to start
    assert not screened(mirror, "dep-three")  # past screen_ahead
    assert not screened(mirror, "dep-extra")  # only the extra brings it in
    row = mirror.services.screening.project_row("dep-one")
    assert row.state == "allowed"


def test_derived_metadata_screens_them_too(start_mirror, index_server, tmp_path) -> None:
    publish_root(index_server, tmp_path, metadata=False)  # the mirror reads METADATA out of the wheel
    mirror = start_mirror(server={"screen_ahead": 8}, upstream={"derive_metadata_min_bytes": 0})
    read_metadata(mirror)
    assert wait_until(lambda: all(screened(mirror, name) for name in DEPENDENCIES))
    assert not screened(mirror, "dep-extra")


def test_off_means_nothing_is_screened_before_it_is_asked_for(start_mirror, index_server, tmp_path) -> None:
    publish_root(index_server, tmp_path)
    mirror = start_mirror(server={"screen_ahead": 0})
    read_metadata(mirror)
    time.sleep(0.5)
    assert not any(screened(mirror, name) for name in DEPENDENCIES)


def test_screenings_ahead_count_against_the_reading_clients_budget(start_mirror, index_server, tmp_path) -> None:
    publish_root(index_server, tmp_path)
    # root-otter itself and one dependency fit the minute's budget; the others wait for the client.
    mirror = start_mirror(server={"screen_ahead": 8, "screenings_per_client_per_minute": 2})
    read_metadata(mirror)

    def count() -> int:
        return sum(screened(mirror, name) for name in DEPENDENCIES)

    assert wait_until(lambda: count() == 1)
    time.sleep(0.5)
    assert count() == 1


def test_dependency_names_leave_out_extras_and_repeats() -> None:
    metadata = (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: Foo_Bar (>=1)\n"
                b"Requires-Dist: baz; python_version < '4'\nRequires-Dist: qux; extra == 'test'\n"
                b"Requires-Dist: foo-bar[extra]\nRequires-Dist: not a requirement !!\n")
    assert dependency_names(metadata) == ["foo-bar", "baz"]
    assert dependency_names(b"\xff\xfe not metadata") == []
