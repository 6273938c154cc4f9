"""BlobStore on a real filesystem: verified publication, no partial files, safe names."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from mirror.serving.store import (
    BlobStore,
    HashMismatch,
    InvalidHash,
    SizeMismatch,
    StoreError,
    validate_sha256,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def temps(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.tmp_dir.iterdir())


def test_layout(store: BlobStore) -> None:
    digest = sha(b"x")
    assert store.path(digest) == store.root / "blobs" / digest[:2] / digest[2:4] / digest
    assert store.lock_path(digest) == store.root / "locks" / f"{digest}.lock"
    assert not store.has(digest)


@pytest.mark.parametrize(
    "bad",
    [
        "../../../../etc/passwd",
        "../" + "a" * 61,
        "a" * 62 + "/.",
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "a" * 64 + "\n",
        "",
        None,
        b"a" * 64,
    ],
)
def test_anything_but_a_sha256_is_refused_everywhere(store: BlobStore, bad: object) -> None:
    with pytest.raises(InvalidHash):
        validate_sha256(bad)
    for method in (store.path, store.has, store.open_temp, store.lock_path, store.open_partial, store.open_blob):
        with pytest.raises(InvalidHash):
            method(bad)  # type: ignore[arg-type]
    assert temps(store) == []


def test_commit_publishes_the_verified_file(store: BlobStore) -> None:
    data = os.urandom(300_000)
    with store.open_temp(sha(data)) as temp:
        temp.write(data[:100_000])
        temp.write(data[100_000:])
        final = temp.commit(sha(data), len(data))
    assert final == store.path(sha(data))
    assert final.read_bytes() == data
    assert store.has(sha(data))
    assert temps(store) == []
    with store.open_blob(sha(data)) as blob:
        assert blob.read() == data


def test_hash_mismatch_leaves_nothing(store: BlobStore) -> None:
    promised = sha(b"promised")
    with store.open_temp(promised) as temp:
        temp.write(b"delivered")
        with pytest.raises(HashMismatch) as caught:
            temp.commit(promised)
    assert caught.value.actual == sha(b"delivered")
    assert not store.has(promised) and not store.has(sha(b"delivered"))
    assert temps(store) == []


def test_size_mismatch_leaves_nothing(store: BlobStore) -> None:
    with store.open_temp(sha(b"data")) as temp:
        temp.write(b"data")
        with pytest.raises(SizeMismatch):
            temp.commit(sha(b"data"), 5)
    assert not store.has(sha(b"data")) and temps(store) == []


def test_commit_under_another_name_is_refused(store: BlobStore) -> None:
    with store.open_temp(sha(b"a")) as temp:
        temp.write(b"b")
        with pytest.raises(ValueError):
            temp.commit(sha(b"b"))
    assert not store.has(sha(b"b")) and temps(store) == []


def test_an_exception_while_writing_removes_the_temp(store: BlobStore) -> None:
    with pytest.raises(RuntimeError):
        with store.open_temp(sha(b"data")) as temp:
            temp.write(b"da")
            assert len(temps(store)) == 1
            raise RuntimeError("client went away")
    assert temps(store) == [] and not store.has(sha(b"data"))


def test_partial_reader_follows_a_live_writer(store: BlobStore) -> None:
    data = b"0123456789"
    digest = sha(data)
    assert store.open_partial(digest) is None
    with store.open_temp(digest) as temp:
        temp.write(data[:4])
        partial = store.open_partial(digest)
        assert partial is not None
        assert partial.read(100) == data[:4]
        assert partial.read(100) == b""
        assert partial.writer_active()
        temp.write(data[4:])
        assert partial.read(100) == data[4:]
        temp.commit(digest)
    assert not partial.writer_active()
    assert partial.committed()
    partial.close()


def test_partial_reader_sees_an_aborted_write_as_not_committed(store: BlobStore) -> None:
    digest = sha(b"never")
    temp = store.open_temp(digest)
    temp.write(b"half")
    partial = store.open_partial(digest)
    assert partial is not None
    temp.abort()
    assert not partial.writer_active()
    assert not partial.committed()
    partial.close()


def test_cleanup_removes_leftovers_but_not_live_writes(store: BlobStore) -> None:
    stale = store.tmp_dir / f"{sha(b'killed')}.abc.part"
    stale.write_bytes(b"left by a killed process")
    live = store.open_temp(sha(b"live"))
    live.write(b"still arriving")
    try:
        assert store.cleanup_stale_temps(max_age=3600) == []  # too young to judge
        assert store.cleanup_stale_temps(max_age=0) == [stale]
        assert temps(store) == [live.path.name]
        assert store.open_partial(sha(b"killed")) is None  # unlocked leftovers are never followed
    finally:
        live.abort()
    assert temps(store) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem, so writes fail with ENOSPC."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_disk_full_is_a_clear_error_and_leaves_nothing(small_disk: Path) -> None:
    store = BlobStore(small_disk / "store")
    data = os.urandom(64 * 1024)
    digest = sha(data * 32)
    with pytest.raises(StoreError, match="no space left"):
        with store.open_temp(digest) as temp:
            for _ in range(32):
                temp.write(data)
            temp.commit(digest)
    assert temps(store) == []
    assert list(store.blobs_dir.rglob("*")) == []
    # The space is back: the store still works.
    small = b"fits"
    with store.open_temp(sha(small)) as temp:
        temp.write(small)
        temp.commit(sha(small))
    assert store.path(sha(small)).read_bytes() == small


def test_cleanup_can_be_limited_to_one_blob(store: BlobStore) -> None:
    mine = store.tmp_dir / f"{sha(b'mine')}.abc.part"
    other = store.tmp_dir / f"{sha(b'other')}.abc.part"
    mine.write_bytes(b"x")
    other.write_bytes(b"y")
    assert store.cleanup_stale_temps(0, sha256=sha(b"mine")) == [mine]
    assert temps(store) == [other.name]
    with pytest.raises(InvalidHash):
        store.cleanup_stale_temps(0, sha256="../*")
