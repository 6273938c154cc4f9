"""Content-addressed blob store: distribution files kept under their sha256.

Layout under ``root``::

    blobs/ab/cd/<sha256>          verified files, the only thing ever served as complete
    tmp/<prefix><random>.part     files being written (same filesystem: the rename is atomic)
    tmp/<prefix><random>.new      a temp file in the instant before its writer locked it
    locks/<sha256>.lock           flock targets for single-flight downloads
    quarantine/<sha256>.<time>    blobs found corrupt at rest, moved aside for inspection

A file reaches ``blobs/`` only by an atomic rename after its hash and size
were checked and its bytes fsynced, so a crash at any moment leaves either
the complete verified file or nothing there.  A writer holds an exclusive
``flock`` on its temp file for as long as it writes, and a ``.part`` name
only ever appears already locked; so an unlocked ``.part`` file is always a
killed process's leftover, which start-up cleanup removes whatever its age,
and never a file another process is filling.

Bytes can still go bad at rest (a failing disk, an operator's slip), so the
store checks what it serves: ``verified_path`` compares the size, re-hashes
small blobs, and checks an integrity mark written at commit (the
nanoseconds of the blob's mtime, derived from its hash: any later write
changes them); ``scrub`` re-hashes everything.  A corrupt blob is moved to
``quarantine/``, so the next request fetches and verifies it afresh.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
TEMP_SUFFIX = ".part"
NEW_SUFFIX = ".new"
# Only a ``.new`` file (created, not yet locked) is judged by age.
DEFAULT_STALE_AGE = 60.0
# Blobs up to this size are re-hashed on every ``verified_path``.
DEFAULT_REHASH_MAX_BYTES = 1024 * 1024
_NS = 1_000_000_000
_HASH_CHUNK = 1024 * 1024

logger = logging.getLogger(__name__)


class StoreError(Exception):
    """The store could not keep a file (disk full, permissions, I/O error)."""


class InvalidHash(ValueError):
    """A string that is not a sha256 hex digest was used as a blob name."""


class VerificationError(Exception):
    """Bytes did not match their pin; they were discarded."""


class HashMismatch(VerificationError):
    """The bytes' sha256 differs from the pin.

    The message names the pin only: what was received (``actual``) is kept
    for logs and events, never put where a client could read it, so a
    refused fetch cannot be used to learn what some URL returns.
    """

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: the bytes received do not hash to the pinned {expected}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(VerificationError):
    """The bytes' size differs from the pin (message: the pin only, as for HashMismatch)."""

    def __init__(self, expected: int, actual: int, *, at_least: bool = False) -> None:
        super().__init__(f"size mismatch: the bytes received are not the pinned {expected} bytes")
        self.expected = expected
        self.actual = actual
        self.at_least = at_least


@dataclass
class ScrubReport:
    """What ``BlobStore.scrub`` found: blobs checked, bytes read, and the corrupt ones moved aside."""

    checked: int = 0
    bytes_read: int = 0
    corrupt: list[str] = field(default_factory=list)
    # Files in blobs/ whose names are not a sha256 (left as they are, reported).
    unexpected: list[str] = field(default_factory=list)


def validate_sha256(value: object) -> str:
    """Return ``value`` if it is 64 lowercase hex characters, else raise InvalidHash.

    Every path in the store is derived from a hash, so this check is what
    makes a path traversal through a hash impossible.
    """
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidHash(f"not a lowercase sha256 hex digest: {value!r:.80}")
    return value


class BlobStore:
    """Verified files by sha256 on one filesystem (an interface other stores can mirror).

    ``rehash_max_bytes``: blobs up to this size are re-hashed each time
    ``verified_path`` is asked for them; bigger ones get the size check and
    the integrity mark (and a full re-hash when the mark is off).
    """

    def __init__(self, root: Path, *, rehash_max_bytes: int = DEFAULT_REHASH_MAX_BYTES) -> None:
        if rehash_max_bytes < 0:
            raise ValueError("rehash_max_bytes must not be negative")
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.locks_dir = self.root / "locks"
        self.quarantine_dir = self.root / "quarantine"
        for directory in (self.blobs_dir, self.tmp_dir, self.locks_dir, self.quarantine_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.rehash_max_bytes = rehash_max_bytes
        # A filesystem with whole-second timestamps cannot keep the mark.
        self.marks_kept = _marks_kept(self.tmp_dir)
        # sha256 -> (size, mtime_ns, inode) when this process last re-hashed it intact: a write
        # changes the stat, so an unchanged stat needs no second re-hash (the scrub still reads all).
        self._hashed: dict[str, tuple[int, int, int]] = {}

    def path(self, sha256: str) -> Path:
        """Where the verified blob lives (it may not exist yet)."""
        sha256 = validate_sha256(sha256)
        return self.blobs_dir / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open_blob(self, sha256: str) -> BinaryIO:
        """Open a verified blob for reading; FileNotFoundError if absent."""
        return open(self.path(sha256), "rb", buffering=0)

    def known_good(self, sha256: str, expected_size: int | None = None) -> Path | None:
        """The blob's path when a stat alone shows it intact (no reading), else None: ask ``verified_path``.

        For the warm path, which must not block the event loop: the pinned
        size, and the integrity mark or an unchanged stat since the last re-hash.
        """
        path = self.path(sha256)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if expected_size is not None and st.st_size != expected_size:
            return None
        if self._hashed.get(sha256) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return path
        if st.st_size > self.rehash_max_bytes and (not self.marks_kept or _is_marked(st, sha256)):
            return path
        return None

    def verified_path(self, sha256: str, expected_size: int | None = None) -> Path | None:
        """The blob's path if it still looks intact, else None (absent, or found corrupt).

        The cheap guard for the serving path: the size against the pin
        (``expected_size``, when pinned), a full re-hash when the blob is at
        most ``rehash_max_bytes``, else the integrity mark, with a full
        re-hash whenever the mark is off.  A corrupt blob is quarantined,
        so treating None as "not stored" re-fetches and re-verifies it.
        """
        path = self.path(sha256)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if expected_size is not None and st.st_size != expected_size:
            self._quarantine(sha256, st, f"size {st.st_size}, pinned {expected_size}")
            return None
        marked = not self.marks_kept or _is_marked(st, sha256)
        if st.st_size > self.rehash_max_bytes and marked:
            return path
        try:
            digest = _file_sha256(path)
        except FileNotFoundError:
            return None
        if digest != sha256:
            self._quarantine(sha256, st, "content does not hash to its name")
            return None
        if not marked:  # intact, stored before marks or copied: mark it now
            _mark_path(path, sha256)
            st = os.stat(path)
        if len(self._hashed) > 100_000:
            self._hashed.clear()
        self._hashed[sha256] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return path

    def scrub(self) -> ScrubReport:
        """Re-hash every blob; quarantine the corrupt ones and mark the good ones.

        For the periodic re-audit.  Reads the whole store, one blob at a time.
        """
        report = ScrubReport()
        for path in sorted(self.blobs_dir.glob("*/*/*")):
            if not path.is_file():
                continue
            if not _SHA256.fullmatch(path.name) or path.parent != self.path(path.name).parent:
                report.unexpected.append(str(path.relative_to(self.blobs_dir)))
                continue
            try:
                st = os.stat(path)
                digest = _file_sha256(path)
            except FileNotFoundError:
                continue  # quarantined meanwhile by a request
            report.checked += 1
            report.bytes_read += st.st_size
            if digest != path.name:
                if self._quarantine(path.name, st, "content does not hash to its name"):
                    report.corrupt.append(path.name)
            elif self.marks_kept and not _is_marked(st, path.name):
                _mark_path(path, path.name)
        return report

    def _quarantine(self, sha256: str, seen: os.stat_result, reason: str) -> bool:
        """Move the blob ``seen`` out of ``blobs/``; False if it is no longer that file.

        Holds the blob's download lock, so a fetcher publishing a fresh copy
        is never the one moved aside.
        """
        path = self.path(sha256)
        fd = os.open(self.lock_path(sha256), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                return False
            if (current.st_dev, current.st_ino) != (seen.st_dev, seen.st_ino):
                return False
            target = self.quarantine_dir / f"{sha256}.{time.time_ns()}"
            try:
                os.rename(path, target)
            except OSError as exc:
                raise _store_error(f"cannot quarantine {sha256}", exc) from exc
        finally:
            os.close(fd)
        logger.critical("stored blob %s is corrupt (%s); moved to %s", sha256, reason, target)
        return True

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
        fd, path = _locked_temp(self.tmp_dir, "put.")
        # The file stays open (so locked) until renamed: unlocked, cleanup may take it.
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                while chunk := stream.read(chunk_size):
                    out.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
            sha256 = hasher.hexdigest()
            _mark_fd(fd, sha256)
            os.fsync(fd)
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
        finally:
            os.close(fd)
        return sha256, size

    def cleanup_stale_temps(
        self, max_age: float = DEFAULT_STALE_AGE, *, sha256: str | None = None
    ) -> list[Path]:
        """Delete temp files left by killed processes; return what was removed.

        A ``.part`` file is removed whenever no process holds its write lock,
        however young: writers lock before the name appears.  A ``.new``
        file (created, lock not yet taken) is removed only once unlocked and
        not modified for ``max_age`` seconds.  ``sha256`` limits the sweep
        to one blob's temp files.
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
                if not stat.S_ISREG(opened.st_mode):
                    continue
                if not path.name.endswith(TEMP_SUFFIX) and now - opened.st_mtime < max_age:
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
        self._fd, self.path = _locked_temp(store.tmp_dir, f"{sha256}.")

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
                _mark_fd(self._fd, self.sha256)
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


def _locked_temp(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new temp file, exclusively flocked before it gets its ``.part`` name.

    So a ``.part`` file without a lock is a dead writer's, whatever its age,
    and start-up cleanup can remove it at once.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=NEW_SUFFIX, dir=directory)
    except OSError as exc:
        raise _store_error("cannot create a temp file", exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = directory / f"{prefix}{secrets.token_hex(16)}{TEMP_SUFFIX}"
        os.rename(name, path)
    except BaseException as exc:
        os.unlink(name)
        os.close(fd)
        if isinstance(exc, OSError):
            raise _store_error("cannot create a temp file", exc) from exc
        raise
    return fd, path


def _mark_ns(sha256: str) -> int:
    """The mtime nanoseconds that mark a blob as written by the store, derived from its hash."""
    return int(sha256[:8], 16) % _NS


def _is_marked(st: os.stat_result, sha256: str) -> bool:
    return st.st_mtime_ns % _NS == _mark_ns(sha256)


def _mark_fd(fd: int, sha256: str) -> None:
    """Set the mark: mtime keeps its second (backups still see a fresh file), gains the mark."""
    st = os.fstat(fd)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns // _NS * _NS + _mark_ns(sha256)))


def _mark_path(path: Path, sha256: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        _mark_fd(fd, sha256)
    except OSError as exc:  # read-only store or foreign owner: the re-hash still guards
        logger.warning("cannot mark %s: %s", path, exc)
    finally:
        os.close(fd)


def _marks_kept(directory: Path) -> bool:
    """Whether files in ``directory`` keep mtime nanoseconds (no whole-second filesystem)."""
    probe = _NS - 123_457
    try:
        fd, name = tempfile.mkstemp(prefix="markprobe.", suffix=NEW_SUFFIX, dir=directory)
    except OSError:
        return False
    try:
        os.utime(fd, ns=(probe, probe))
        return os.fstat(fd).st_mtime_ns == probe
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(name)


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


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
