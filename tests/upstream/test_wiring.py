"""Issue 12 items 11, 12, 21 and 26 through a running mirror (needs the container/files.py wiring)."""

from __future__ import annotations

import gzip
import hashlib
import os
import time

import pytest
import requests

from tests.faults.checks import Listener, download, file_url, get_page, store_problems
from tests.support.publish import publish

FAST = {"upstream": {"timeout": 1.0}}


def warm(mirror, index_server, tmp_path, name: str = "quiet-otter"):
    registered = publish(index_server, tmp_path, name)[0]
    response = get_page(mirror.url, name)
    assert response.status_code == 200, response.text
    entry = response.json()["files"][0]
    return registered, file_url(mirror.url, name, entry), entry


@pytest.fixture
def same_host_service():
    """Another service on the upstream's own host (127.0.0.1), on another port."""
    listener = Listener("127.0.0.1")
    yield listener
    listener.close()


# -- item 12: another port of a local upstream's host is off-limits ------------------------


def test_links_and_redirects_to_another_port_of_the_upstream_host_are_refused(
    start_mirror, index_server, tmp_path, same_host_service
) -> None:
    mirror = start_mirror(**FAST)
    registered, url, _ = warm(mirror, index_server, tmp_path)
    with index_server.fault(registered.filename, "redirect", location=f"{same_host_service.base}/x.whl"):
        status, body, _ = download(url)
    assert status == 502 and b"not an allowed upstream host and port" in body, body[:300]
    publish(index_server, tmp_path, "other-otter")
    index_server.fault("other-otter", "hostile_links", urls=[f"{same_host_service.base}/{{filename}}"])
    page = get_page(mirror.url, "other-otter")
    for entry in page.json()["files"]:
        status, body, _ = download(file_url(mirror.url, "other-otter", entry))
        assert status == 502, body[:300]
    assert same_host_service.connections == 0


# -- item 11: identity only, and capped metadata ------------------------------------------


def test_a_gzip_encoded_file_is_a_502_and_nothing_is_stored(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(**FAST)
    registered, url, _ = warm(mirror, index_server, tmp_path)
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    with index_server.fault(registered.filename, "status", status=200, body=bomb,
                            headers={"Content-Encoding": "gzip"}):
        status, body, _ = download(url)
    assert status == 502 and b"Content-Encoding" in body
    assert store_problems(mirror.services.store.root) == []
    assert not mirror.services.store.has(registered.sha256)


def test_a_metadata_file_over_its_cap_is_not_delivered(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(upstream={"timeout": 5.0, "max_metadata_bytes": 64 * 1024})
    registered, url, entry = warm(mirror, index_server, tmp_path)
    index_server.fault(registered.filename + ".metadata", "huge", size_mib=8, declare_length=False)
    status, body, broken = download(url + ".metadata")
    assert status == 502 or broken
    assert len(body) <= 64 * 1024
    assert not mirror.services.store.has(registered.metadata_sha256)
    assert store_problems(mirror.services.store.root) == []


# -- item 21: at-rest corruption is never served ------------------------------------------


def test_a_blob_corrupted_on_disk_is_quarantined_and_refetched(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(**FAST)
    registered, url, _ = warm(mirror, index_server, tmp_path)
    assert hashlib.sha256(requests.get(url, timeout=30).content).hexdigest() == registered.sha256
    path = mirror.services.store.path(registered.sha256)
    stat = os.stat(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # bit rot: same size, same mtime
    for _ in range(3):
        served = requests.get(url, timeout=30)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == registered.sha256
    assert [p.name.split(".")[0] for p in mirror.services.store.quarantine_dir.iterdir()] == [registered.sha256]
    assert store_problems(mirror.services.store.root) == []


# -- item 26: a down upstream fails fast ---------------------------------------------------


def test_a_hanging_upstream_fails_fast_once_the_breaker_opens(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(upstream={"timeout": 1.0, "breaker_failures": 2, "breaker_cooldown": 60.0})
    for name in ("a-otter", "b-otter", "c-otter"):
        publish(index_server, tmp_path, name)
    with index_server.fault("/", "hang", seconds=3):  # the whole upstream hangs: pages and project JSON
        for name in ("a-otter", "b-otter"):
            assert get_page(mirror.url, name).status_code == 503
        started = time.monotonic()
        refused = get_page(mirror.url, "c-otter")
        elapsed = time.monotonic() - started
    assert refused.status_code == 503 and "not trying again" in refused.text
    assert refused.headers["Retry-After"]
    assert elapsed < 0.5
