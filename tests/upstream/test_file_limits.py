"""File downloads from a hostile upstream: identity encoding only, and caps that stop the read."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from mirror.serving.fetcher import FileFetcher
from mirror.serving.store import BlobStore
from mirror.upstream.errors import RefusedEncoding, ResponseTooLarge
from mirror.upstream.netguard import NetGuard, requests_opener, url_host_entry
from tests.support.index_server import IndexServer
from tests.support.publish import publish

CAP = 1024 * 1024
CHUNK = 64 * 1024


class Counting:
    """The real opener, counting the bytes it hands to the fetcher."""

    def __init__(self, index_server: IndexServer) -> None:
        guard = NetGuard({url_host_entry(index_server.url)}, allow_private=True)
        self._open = requests_opener(guard, timeout=10, chunk_size=CHUNK)
        self.read = 0

    def __call__(self, url: str):
        body = self._open(url)
        counter = self

        class Body:
            content_length = body.content_length

            def iter_chunks(self) -> Iterator[bytes]:
                for chunk in body.iter_chunks():
                    counter.read += len(chunk)
                    yield chunk

            def close(self) -> None:
                body.close()

        return Body()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def fetcher(store: BlobStore, opener: Counting) -> FileFetcher:
    return FileFetcher(store, opener, chunk_size=CHUNK, max_size=CAP, max_metadata_size=CAP // 4)


def leftovers(store: BlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file() and p.parent.name not in ("locks",)]


def test_files_are_asked_for_unencoded(index_server, store, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "plain-otter")[0]
    fetch = fetcher(store, Counting(index_server))
    fetch.ensure(registered.sha256, index_server.absolute(registered.url_path), registered.size)
    (sent,) = [r for r in index_server.requests if r.path == registered.url_path]
    assert sent.headers["Accept-Encoding"] == "identity"


def test_a_gzip_encoded_file_is_refused_unread(index_server, store) -> None:
    """A 64 KiB gzip body that would inflate to 256 MiB: never decoded, nothing kept."""
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)
    index_server.fault(
        "/packages/", "status", status=200, body=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
    )
    opener = Counting(index_server)
    digest = hashlib.sha256(b"the real file").hexdigest()
    with pytest.raises(RefusedEncoding, match="Content-Encoding 'gzip'"):
        fetcher(store, opener).ensure(digest, index_server.url.rstrip("/") + "/packages/x-1.0.whl")
    assert opener.read == 0
    assert leftovers(store) == []


@pytest.mark.parametrize("metadata", [False, True])
def test_an_unknown_size_download_stops_at_its_cap(index_server, store, tmp_path, metadata) -> None:
    registered = publish(index_server, tmp_path, "huge-otter")[0]
    url = index_server.absolute(registered.url_path) + (".metadata" if metadata else "")
    target = registered.filename + (".metadata" if metadata else "")
    index_server.fault(target, "huge", size_mib=64, declare_length=False)
    opener = Counting(index_server)
    cap = CAP // 4 if metadata else CAP
    digest = registered.metadata_sha256 if metadata else registered.sha256
    with pytest.raises(ResponseTooLarge, match=f"exceeds the {cap} bytes"):
        fetcher(store, opener).ensure(digest, url, None, metadata=metadata)
    assert opener.read <= cap + CHUNK  # stopped at the cap, not at the end of 64 MiB
    assert leftovers(store) == []


def test_a_declared_length_over_the_cap_is_refused_before_reading(index_server, store, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "huge-otter")[0]
    index_server.fault(registered.filename + ".metadata", "huge", size_mib=8, declare_length=True)
    opener = Counting(index_server)
    with pytest.raises(ResponseTooLarge, match="more than the"):
        fetcher(store, opener).ensure(
            registered.metadata_sha256, index_server.absolute(registered.url_path) + ".metadata",
            metadata=True,
        )
    assert opener.read == 0


def test_a_metadata_file_within_its_cap_is_stored(index_server, store, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "small-otter")[0]
    url = index_server.absolute(registered.url_path) + ".metadata"
    fetcher(store, Counting(index_server)).ensure(registered.metadata_sha256, url, metadata=True)
    assert store.has(registered.metadata_sha256)


def test_a_pinned_size_over_the_cap_is_refused_before_anything_is_fetched(index_server, store, tmp_path) -> None:
    """A hostile page can pin any size; the cap still holds."""
    registered = publish(index_server, tmp_path, "huge-otter")[0]
    index_server.clear_requests()
    with pytest.raises(ResponseTooLarge, match="pinned size"):
        fetcher(store, Counting(index_server)).ensure(
            registered.sha256, index_server.absolute(registered.url_path), 64 * CAP
        )
    assert index_server.requests == []
