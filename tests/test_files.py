"""Files: verified, content-addressed, single download, blocked when upstream changes them."""

from __future__ import annotations

import hashlib
import threading

import requests
from sqlalchemy import select

from mirror.db.models import Event, PinnedFile
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def page(mirror, name: str) -> dict:
    response = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def file_url(mirror, name: str, entry: dict) -> str:
    return requests.compat.urljoin(mirror.simple_url + f"{name}/", entry["url"])


def test_first_download_is_verified_cached_and_served_from_store(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    entry = page(mirror, "quiet-otter")["files"][0]
    url = file_url(mirror, "quiet-otter", entry)
    first = requests.get(url, timeout=30)
    assert first.status_code == 200
    assert hashlib.sha256(first.content).hexdigest() == registered.sha256
    assert mirror.services.store.has(registered.sha256)
    second = requests.get(url, timeout=30)
    assert second.content == first.content
    assert index_server.download_count(registered.filename) == 1


def test_range_requests_on_cached_files(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    url = file_url(mirror, "quiet-otter", page(mirror, "quiet-otter")["files"][0])
    whole = requests.get(url, timeout=30).content
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert part.status_code == 206
    assert part.content == whole[10:20]


def test_core_metadata_served_and_verified(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    entry = page(mirror, "quiet-otter")["files"][0]
    meta = requests.get(file_url(mirror, "quiet-otter", entry) + ".metadata", timeout=30)
    assert meta.status_code == 200
    assert hashlib.sha256(meta.content).hexdigest() == entry["core-metadata"]["sha256"]
    assert b"name: quiet-otter" in meta.content.lower()
    assert registered.metadata_sha256 == entry["core-metadata"]["sha256"]


def test_hash_mismatch_cuts_the_transfer_caches_nothing_and_records_event(
    mirror, index_server, tmp_path
) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    entry = page(mirror, "quiet-otter")["files"][0]
    original = (tmp_path / "dists" / registered.filename).read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    index_server.replace_file_bytes(registered.filename, bytes(tampered), update_listing=False)
    received = b""
    failed = False
    try:
        with requests.get(file_url(mirror, "quiet-otter", entry), stream=True, timeout=30) as response:
            for chunk in response.iter_content(65536):
                received += chunk
    except requests.RequestException:
        failed = True
    assert failed or len(received) < len(original)
    assert received != bytes(tampered)
    assert not mirror.services.store.has(registered.sha256)
    assert not list(mirror.services.store.tmp_dir.iterdir())
    with mirror.services.sessions() as session:
        kinds = [e.kind for e in session.scalars(select(Event))]
    assert "hash-mismatch" in kinds


def test_truncated_upstream_download_is_never_completed(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    entry = page(mirror, "quiet-otter")["files"][0]
    index_server.fault(registered.filename, "truncate", after=100)
    failed = False
    received = b""
    try:
        with requests.get(file_url(mirror, "quiet-otter", entry), stream=True, timeout=30) as response:
            for chunk in response.iter_content(65536):
                received += chunk
    except requests.RequestException:
        failed = True
    assert failed or hashlib.sha256(received).hexdigest() != registered.sha256
    assert not mirror.services.store.has(registered.sha256)
    index_server.clear_faults()
    again = requests.get(file_url(mirror, "quiet-otter", entry), timeout=30)
    assert hashlib.sha256(again.content).hexdigest() == registered.sha256


def test_concurrent_requests_make_one_upstream_download(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    url = file_url(mirror, "quiet-otter", page(mirror, "quiet-otter")["files"][0])
    index_server.fault(registered.filename, "drip", bytes_per_second=200_000)
    results: list[bytes] = []

    def fetch() -> None:
        results.append(requests.get(url, timeout=60).content)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert {hashlib.sha256(r).hexdigest() for r in results} == {registered.sha256}
    assert index_server.download_count(registered.filename) == 1


def test_upstream_changing_a_published_file_blocks_it(mirror, index_server, tmp_path, clock) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    entry = page(mirror, "quiet-otter")["files"][0]
    index_server.replace_file_bytes(registered.filename, b"not the same bytes", update_listing=True)
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert page(mirror, "quiet-otter")["files"] == []
    refused = requests.get(file_url(mirror, "quiet-otter", entry), timeout=30)
    assert refused.status_code == 403
    assert "upstream changed a published file" in refused.text
    with mirror.services.sessions() as session:
        pin = session.scalars(select(PinnedFile).where(PinnedFile.filename == registered.filename)).one()
        events = list(session.scalars(select(Event).where(Event.kind == "file-changed")))
    assert pin.sha256 == registered.sha256  # the first hash stays pinned
    assert events and events[0].severity == "critical"


def test_unknown_and_malformed_file_paths(mirror) -> None:
    base = mirror.url + "files/"
    assert requests.get(base + "0" * 64 + "/x-1.0.tar.gz", timeout=30).status_code == 404
    assert requests.get(base + "..%2F..%2Fetc%2Fpasswd/x", timeout=30).status_code == 404
    assert requests.get(base + "ABC/x-1.0.tar.gz", timeout=30).status_code == 404
