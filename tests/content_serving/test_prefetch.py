"""A file whose metadata a client read is fetched and scanned before the client asks for it.

pip and uv read every project's core metadata (PEP 658) while resolving and
download afterwards; scanning each chosen file at once takes the scan out of
the download's path.  ``[content] prefetch_queue`` bounds it.
"""

from __future__ import annotations

import time

import requests
from sqlalchemy import select

from mirror.db.models import ArtifactScan
from tests.faults.checks import store_problems
from tests.support.clients import pip
from tests.support.publish import publish
from tests.support.waiting import wait_until

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def read_metadata(mirror, project: str) -> None:
    page = requests.get(f"{mirror.simple_url}{project}/", headers=JSON, timeout=30).json()
    (entry,) = page["files"]
    assert entry["core-metadata"], entry
    url = requests.compat.urljoin(f"{mirror.simple_url}{project}/", entry["url"]) + ".metadata"
    assert requests.get(url, timeout=30).status_code == 200


def scanned(mirror) -> set[str]:
    with mirror.services.sessions() as session:
        return set(session.scalars(select(ArtifactScan.filename)))


def file_requests(index_server, wheel) -> int:
    return sum(1 for r in index_server.requests if r.path == wheel.url_path)


def test_reading_metadata_scans_the_file_before_its_download(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(content={"prefetch_queue": 16})  # the product's default (the tests' is 0)
    (wheel,) = publish(index_server, tmp_path, "calm-badger", "2.1")
    read_metadata(mirror, "calm-badger")
    assert wait_until(lambda: wheel.filename in scanned(mirror)), "no scan after the metadata was read"
    assert file_requests(index_server, wheel) == 1
    done = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url, "calm-badger")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "dl" / wheel.filename).exists()
    assert file_requests(index_server, wheel) == 1  # the download came from the store


def test_prefetch_queue_bounds_the_scans_ahead_and_zero_switches_them_off(start_mirror, index_server, tmp_path) -> None:
    (slow,) = publish(index_server, tmp_path, "slow-heron", "1.0")
    (other,) = publish(index_server, tmp_path, "quick-wren", "1.0")
    bounded = start_mirror(content={"prefetch_queue": 1})
    with index_server.fault(slow.filename, "hang", seconds=3):
        read_metadata(bounded, "slow-heron")
        assert wait_until(lambda: file_requests(index_server, slow) == 1)
        read_metadata(bounded, "quick-wren")  # the one place is taken: not queued
    assert wait_until(lambda: slow.filename in scanned(bounded))
    time.sleep(0.5)
    assert other.filename not in scanned(bounded) and file_requests(index_server, other) == 0

    off = start_mirror(content={"prefetch_queue": 0})  # same database, own storage
    read_metadata(off, "quick-wren")
    time.sleep(1.0)
    assert other.filename not in scanned(off) and file_requests(index_server, other) == 0


def test_a_scan_ahead_that_fails_leaves_the_download_to_fetch_and_scan_it(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(content={"prefetch_queue": 16})
    (wheel,) = publish(index_server, tmp_path, "calm-badger", "2.1")
    with index_server.fault(wheel.filename, "status", status=503):
        read_metadata(mirror, "calm-badger")
        assert wait_until(lambda: file_requests(index_server, wheel) >= 1)
        assert wait_until(lambda: not mirror.services.content._prefetching)  # the place is given back
    assert wheel.filename not in scanned(mirror)
    assert store_problems(mirror.services.store.root) == []  # nothing half-written left behind
    done = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url, "calm-badger")
    assert done.returncode == 0, done.stdout + done.stderr
    assert wheel.filename in scanned(mirror) and (tmp_path / "dl" / wheel.filename).exists()
