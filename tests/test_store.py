"""BlobStore on a real filesystem: verified publication, no partial files, safe names."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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
    unlocked_yet = store.tmp_dir / f"{sha(b'creating')}.abc.new"  # created, lock not yet taken
    unlocked_yet.write_bytes(b"")
    live = store.open_temp(sha(b"live"))
    live.write(b"still arriving")
    try:
        # A fresh unlocked .part is a dead writer's: writers lock before the name appears.
        assert store.cleanup_stale_temps(max_age=3600) == [stale]
        assert sorted(temps(store)) == sorted([live.path.name, unlocked_yet.name])
        assert store.cleanup_stale_temps(max_age=0) == [unlocked_yet]  # old enough now
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


# -- temp files of killed processes (removed at start-up whatever their age) ------------

_WRITER = """
import sys, time
from pathlib import Path
from mirror.serving.store import BlobStore
temp = BlobStore(Path(sys.argv[1])).open_temp(sys.argv[2])
temp.write(b"x" * 65536)
print(temp.path.name, flush=True)
time.sleep(600)
"""


def _writer(root: Path, digest: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), digest],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_startup_cleanup_removes_a_killed_writers_fresh_temp_but_not_a_live_ones(
    store: BlobStore,
) -> None:
    killed, killed_name = _writer(store.root, sha(b"killed"))
    live, live_name = _writer(store.root, sha(b"live"))
    try:
        killed.kill()
        killed.wait(10)
        assert sorted(temps(store)) == sorted([killed_name, live_name])
        # Seconds old, not 60: the lock alone says nobody owns it any more.
        assert [p.name for p in store.cleanup_stale_temps()] == [killed_name]
        assert temps(store) == [live_name]
        partial = store.open_partial(sha(b"live"))
        assert partial is not None and partial.writer_active()
        partial.close()
    finally:
        live.kill()
        live.wait(10)
    assert [p.name for p in store.cleanup_stale_temps()] == [live_name]


def test_an_upload_being_written_survives_a_cleanup_in_another_process(store: BlobStore) -> None:
    class Stream:
        """Two chunks, and a start-up cleanup (as by a new worker) between them."""

        def __init__(self) -> None:
            self.chunks = [b"first half ", b"second half"]

        def read(self, size: int) -> bytes:
            if len(self.chunks) == 1:
                assert store.cleanup_stale_temps() == []
            return self.chunks.pop(0) if self.chunks else b""

    digest, size = store.put_stream(Stream())  # type: ignore[arg-type]
    assert store.path(digest).read_bytes() == b"first half second half" and size == 22
    assert temps(store) == []


# -- verification messages name the pin, never what was received -----------------------


def test_mismatch_messages_do_not_echo_what_was_received() -> None:
    expected, received = sha(b"pinned"), sha(b"what some port answered")
    assert received not in str(HashMismatch(expected, received))
    assert expected in str(HashMismatch(expected, received))
    assert "12345" not in str(SizeMismatch(10, 12345))


# -- at-rest corruption: the serving guard and the scrub ----------------------------------


def put(store: BlobStore, data: bytes) -> str:
    digest = sha(data)
    with store.open_temp(digest) as temp:
        temp.write(data)
        temp.commit(digest, len(data))
    return digest


def flip_a_byte(path: Path, *, keep_mtime: bool = False) -> None:
    """Alter a blob in place, as a failing disk (keep_mtime) or a stray write would."""
    before = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def quarantined(store: BlobStore) -> list[str]:
    return sorted(p.name.split(".")[0] for p in store.quarantine_dir.iterdir())


def test_verified_path_serves_intact_blobs(store: BlobStore) -> None:
    small, large = b"s" * 1000, os.urandom(300_000)
    guarded = BlobStore(store.root, rehash_max_bytes=100_000)
    for data in (small, large):
        digest = put(guarded, data)
        assert guarded.verified_path(digest, len(data)) == guarded.path(digest)
        assert guarded.verified_path(digest) == guarded.path(digest)  # size not pinned
    assert guarded.verified_path(sha(b"absent")) is None
    assert quarantined(guarded) == []


def test_verified_path_quarantines_a_blob_of_the_wrong_size(store: BlobStore) -> None:
    data = os.urandom(300_000)
    guarded = BlobStore(store.root, rehash_max_bytes=0)  # no re-hash: the size alone decides
    digest = put(guarded, data)
    with open(guarded.path(digest), "ab") as f:
        f.write(b"tail")
    assert guarded.verified_path(digest, len(data)) is None
    assert not guarded.has(digest) and quarantined(guarded) == [digest]


def test_verified_path_rehashes_small_blobs(store: BlobStore) -> None:
    data = b"small wheel bytes" * 100
    digest = put(store, data)
    flip_a_byte(store.path(digest), keep_mtime=True)  # same size, same mark: only a hash sees it
    assert store.verified_path(digest, len(data)) is None
    assert quarantined(store) == [digest]
    # Quarantined means missing: a fresh, verified copy can be stored and served again.
    assert put(store, data) == digest and store.verified_path(digest, len(data)) is not None


def test_verified_path_catches_a_write_to_a_large_blob_by_its_mark(store: BlobStore) -> None:
    if not store.marks_kept:
        pytest.skip("this filesystem keeps whole-second timestamps only")
    data = os.urandom(300_000)
    guarded = BlobStore(store.root, rehash_max_bytes=1000)
    digest = put(guarded, data)
    flip_a_byte(guarded.path(digest))  # a write moves the mtime off the mark
    assert guarded.verified_path(digest, len(data)) is None
    assert quarantined(guarded) == [digest]


def test_verified_path_marks_an_intact_unmarked_blob_once(store: BlobStore) -> None:
    if not store.marks_kept:
        pytest.skip("this filesystem keeps whole-second timestamps only")
    data = os.urandom(300_000)
    guarded = BlobStore(store.root, rehash_max_bytes=1000)
    digest = put(guarded, data)
    path = guarded.path(digest)
    os.utime(path, ns=(0, 1_000_000_000))  # say, restored from a backup without mtimes
    assert guarded.verified_path(digest, len(data)) == path  # re-hashed, found intact
    assert os.stat(path).st_mtime_ns != 1_000_000_000  # and marked again
    assert quarantined(guarded) == []


def test_scrub_rehashes_everything_and_quarantines_the_corrupt(store: BlobStore) -> None:
    datas = [os.urandom(200_000), b"metadata", os.urandom(5000)]
    digests = [put(store, data) for data in datas]
    flip_a_byte(store.path(digests[0]), keep_mtime=True)  # bit rot: invisible but to a hash
    stray = store.blobs_dir / "ab" / "cd" / "not-a-hash"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"?")
    report = store.scrub()
    assert report.checked == 3 and report.corrupt == [digests[0]]
    assert report.bytes_read == sum(len(d) for d in datas)
    assert report.unexpected == ["ab/cd/not-a-hash"]
    assert not store.has(digests[0]) and store.has(digests[1]) and store.has(digests[2])
    assert quarantined(store) == [digests[0]]
    assert store.scrub().corrupt == []
