"""Content-addressed blob store: distribution files kept under their sha256.

Layout under ``root``::

    blobs/ab/cd/<sha256>          verified files, the only thing ever served as complete
    tmp/<sha256>.<random>.part    files being written (same filesystem: the rename is atomic)
    locks/<sha256>.lock           flock targets for single-flight downloads

A file reaches ``blobs/`` only by an atomic rename after its hash and size
were checked and its bytes fsynced, so a crash at any moment leaves either
the complete verified file or nothing there.  A writer holds an exclusive
``flock`` on its temp file for as long as it writes; that lock is how
readers tell a live download from the leftover of a killed process, and
why start-up cleanup never deletes a file another process is filling.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import stat
import re
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
TEMP_SUFFIX = ".part"
DEFAULT_STALE_AGE = 60.0

logger = logging.getLogger(__name__)


class StoreError(Exception):
    """The store could not keep a file (disk full, permissions, I/O error)."""


class InvalidHash(ValueError):
    """A string that is not a sha256 hex digest was used as a blob name."""


class VerificationError(Exception):
    """Bytes did not match their pin; they were discarded."""


class HashMismatch(VerificationError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(VerificationError):
    def __init__(self, expected: int, actual: int, *, at_least: bool = False) -> None:
        got = f"at least {actual}" if at_least else str(actual)
        super().__init__(f"size mismatch: expected {expected} bytes, got {got}")
        self.expected = expected
        self.actual = actual


def validate_sha256(value: object) -> str:
    """Return ``value`` if it is 64 lowercase hex characters, else raise InvalidHash.

    Every path in the store is derived from a hash, so this check is what
    makes a path traversal through a hash impossible.
    """
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidHash(f"not a lowercase sha256 hex digest: {value!r:.80}")
    return value


class BlobStore:
    """Verified files by sha256 on one filesystem (an interface other stores can mirror)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.locks_dir = self.root / "locks"
        for directory in (self.blobs_dir, self.tmp_dir, self.locks_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the verified blob lives (it may not exist yet)."""
        sha256 = validate_sha256(sha256)
        return self.blobs_dir / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open_blob(self, sha256: str) -> BinaryIO:
        """Open a verified blob for reading; FileNotFoundError if absent."""
        return open(self.path(sha256), "rb", buffering=0)

    def lock_path(self, sha256: str) -> Path:
        return self.locks_dir / f"{validate_sha256(sha256)}.lock"

    def open_temp(self, sha256: str) -> TempBlob:
        """Start writing a blob; use as a context manager so failures clean up."""
        return TempBlob(self, validate_sha256(sha256))

    def open_partial(self, sha256: str) -> PartialBlob | None:
        """Open the temp file a live writer is filling for ``sha256``, if any.

        Lets other requests stream a download while it is still arriving
        instead of waiting silently for the whole file.
        """
        sha256 = validate_sha256(sha256)
        candidates = []
        for path in self.tmp_dir.glob(f"{sha256}.*{TEMP_SUFFIX}"):
            try:
                candidates.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        for _, path in sorted(candidates, reverse=True):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            partial = PartialBlob(self, sha256, fd)
            if partial.writer_active():
                return partial
            partial.close()
        return None

    def put_stream(self, stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[str, int]:
        """Store bytes whose hash is not known in advance (uploads, internal files).

        Returns (sha256, size).  The content decides the address, so there is
        nothing to verify against; the same temp, fsync and rename rules apply.
        """
        hasher = hashlib.sha256()
        size = 0
        try:
            fd, name = tempfile.mkstemp(prefix="put.", suffix=TEMP_SUFFIX, dir=self.tmp_dir)
        except OSError as exc:
            raise _store_error("cannot create a temp file", exc) from exc
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(chunk_size):
                    out.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = hasher.hexdigest()
            final = self.path(sha256)
            if final.exists():
                path.unlink()
            else:
                _makedirs_durably(final.parent, self.blobs_dir)
                os.rename(path, final)
                _fsync_dir(final.parent)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise _store_error("cannot store an uploaded file", exc) from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return sha256, size

    def cleanup_stale_temps(
        self, max_age: float = DEFAULT_STALE_AGE, *, sha256: str | None = None
    ) -> list[Path]:
        """Delete temp files left by killed processes; return what was removed.

        A file is removed only if no process holds its write lock and it was
        not modified for ``max_age`` seconds (the age covers the instant
        between a temp file's creation and its writer taking the lock).
        ``sha256`` limits the sweep to one blob's temp files.
        """
        pattern = f"{validate_sha256(sha256)}.*" if sha256 is not None else "*"
        removed = []
        now = time.time()
        for path in sorted(self.tmp_dir.glob(pattern)):
            try:
                # Read-write: NFS emulates flock with byte-range locks, and an
                # exclusive one needs a file open for writing.
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                try:
                    # Shared, not exclusive: a writer's exclusive lock still stops
                    # us, while a reader probing the file neither stops us nor
                    # mistakes our probe for a live writer.
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds the lock
                opened = os.fstat(fd)
                if not stat.S_ISREG(opened.st_mode) or now - opened.st_mtime < max_age:
                    continue
                try:
                    current = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                    continue  # replaced since we opened it: not the file we checked
                os.unlink(path)
                removed.append(path)
            finally:
                os.close(fd)
        return removed


class TempBlob:
    """A blob being written: hashed as it is written, published only when verified."""

    def __init__(self, store: BlobStore, sha256: str) -> None:
        self.store = store
        self.sha256 = sha256
        self.size = 0
        self._hasher = hashlib.sha256()
        self._fd: int | None = None
        try:
            fd, name = tempfile.mkstemp(
                prefix=f"{sha256}.", suffix=TEMP_SUFFIX, dir=store.tmp_dir
            )
        except OSError as exc:
            raise _store_error("cannot create a temp file", exc) from exc
        self.path = Path(name)
        self._fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self.abort()
            raise

    @property
    def hexdigest(self) -> str:
        """sha256 of the bytes written so far."""
        return self._hasher.hexdigest()

    def write(self, data: bytes) -> None:
        """Append ``data``; straight to the OS so readers following the file see it."""
        if self._fd is None:
            raise StoreError("temp blob is closed")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.abort()
            raise _store_error(f"cannot write {self.sha256}", exc) from exc
        self._hasher.update(data)
        self.size += len(data)

    def commit(self, expected_sha256: str, expected_size: int | None = None) -> Path:
        """Verify, fsync and atomically publish the blob; return its final path.

        On any failure the temp file is deleted, so nothing partial remains.
        """
        if self._fd is None:
            raise StoreError("temp blob is closed")
        try:
            if validate_sha256(expected_sha256) != self.sha256:
                raise ValueError("commit hash differs from the hash the temp blob was opened for")
            actual = self._hasher.hexdigest()
            if actual != expected_sha256:
                raise HashMismatch(expected_sha256, actual)
            if expected_size is not None and self.size != expected_size:
                raise SizeMismatch(expected_size, self.size)
            final = self.store.path(self.sha256)
            try:
                os.fsync(self._fd)
                _makedirs_durably(final.parent, self.store.blobs_dir)
                os.rename(self.path, final)
            except OSError as exc:
                raise _store_error(f"cannot store {self.sha256}", exc) from exc
        except BaseException:
            self.abort()
            raise
        # The rename is done; closing releases the lock only after it, so a
        # reader that sees the lock free can trust what it finds at ``final``.
        self._release()
        try:
            _fsync_dir(final.parent)
        except OSError as exc:  # the blob is verified and in place; only durability is in doubt
            logger.warning(
                "could not fsync %s after storing %s: %s", final.parent, self.sha256, exc
            )
        return final

    def abort(self) -> None:
        """Delete the temp file (before releasing the lock); safe to call twice."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> TempBlob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # no-op after a successful commit


class PartialBlob:
    """A reader of a temp file that may still be growing."""

    def __init__(self, store: BlobStore, sha256: str, fd: int) -> None:
        self.store = store
        self.sha256 = sha256
        self._fd: int | None = fd
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes that have landed so far (b"" if none yet)."""
        assert self._fd is not None
        return os.read(self._fd, size)

    def writer_active(self) -> bool:
        """True while the writer still holds the file's lock."""
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def committed(self) -> bool:
        """True if this very file was verified and published as the blob.

        Meaningful once ``writer_active()`` is False: writers publish before
        they release the lock.
        """
        try:
            st = os.stat(self.store.path(self.sha256))
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def size(self) -> int:
        assert self._fd is not None
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _store_error(what: str, exc: OSError) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"{what}: no space left on the storage device")
    return StoreError(f"{what}: {exc.strerror or exc}")


def _makedirs_durably(directory: Path, base: Path) -> None:
    """Create ``directory`` under ``base`` and fsync each parent that gained an entry."""
    missing = []
    current = directory
    while current != base and not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
