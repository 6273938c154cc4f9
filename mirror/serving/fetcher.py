"""Verified, single-flight downloads of distribution files, streamed while they arrive.

How one uncached file is served:

* The download runs in a worker thread that belongs to no client.  It takes
  an ``flock`` on ``locks/<sha256>.lock`` so that across threads, worker
  processes and replicas sharing the storage directory exactly one
  download of a file is in flight.  It writes a temp file while hashing,
  then verifies, fsyncs and renames it into the store.
* Every client request, in every process, reads the same way: it follows
  the temp file as it grows and sends bytes as they land, always holding
  back the chunk read last.  That chunk is sent only once the very file it
  was following has been published as the verified blob.  So a client
  never completes a wrong, short or unverified file, and nobody waits
  silently for a 1 GB download (pip gives up after 15 s without a byte).
* A client that goes away just stops reading; the download carries on and
  the file is cached for the retry.  A killed process leaves only an
  unlocked temp file, which ``BlobStore.cleanup_stale_temps`` removes.

When a download fails, every request following it fails too (raising
HashMismatch, SizeMismatch, UpstreamError or StoreError; the route cuts the
connection).  A process whose download was waiting behind another
process's failed one does not retry: failures are nearly always persistent
(a hostile or broken upstream), and one retry per process would multiply
the load on it.  The next request starts a fresh attempt.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator, Protocol

from mirror import metrics
from mirror.upstream.errors import ResponseTooLarge, UpstreamError
from mirror.upstream.netguard import redact_url
from mirror.serving.store import (
    BlobStore,
    HashMismatch,
    PartialBlob,
    SizeMismatch,
    StoreError,
    VerificationError,
    validate_sha256,
)

__all__ = [
    "FileFetcher",
    "HashMismatch",
    "LeaderFailed",
    "SizeMismatch",
    "StoreError",
    "UpstreamBody",
    "prime",
]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256 * 1024


class UpstreamBody(Protocol):
    """What ``open_upstream(url)`` returns; ``content_length`` (int | None) is optional."""

    def iter_chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


OpenUpstream = Callable[[str], UpstreamBody]
# (sha256, url, actual): ``actual`` is the sha256 of the complete body
# received, or "size N" when the body was cut because it outgrew the pin.
OnMismatch = Callable[[str, str, str], None]


class LeaderFailed(UpstreamError):
    """The download this request was following (led by another process) failed."""


@dataclass(eq=False)
class _Download:
    """One download attempt as seen by this process; clients wait on ``changed``."""

    sha256: str
    url: str
    size: int | None
    cap: int | None  # the configured cap for this kind of file
    changed: threading.Condition = field(default_factory=threading.Condition)
    done: bool = False
    error: BaseException | None = None
    # Set once a temp file of this attempt exists (here, or in the process we
    # wait for).  Before that, any temp file is a killed leader's leftover,
    # possibly being cleaned up, and must not be followed.
    ready: bool = False

    def mark_ready(self) -> None:
        with self.changed:
            self.ready = True
            self.changed.notify_all()

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, timeout: float) -> None:
        """Until this process writes more, or ``timeout`` (other processes are polled)."""
        with self.changed:
            if not self.done:
                self.changed.wait(timeout)
                return
        time.sleep(timeout)  # done here, but a client may follow another process's attempt

    def finish(self, error: BaseException | None) -> None:
        with self.changed:
            self.done = True
            self.error = error
            self.changed.notify_all()


class FileFetcher:
    """Serves blobs, downloading a missing one once however many ask for it.

    ``poll_interval`` is how often a client following a download written by
    another process looks for new bytes (same-process writes wake it at once).
    ``max_size`` caps a distribution file, ``max_metadata_size`` a
    core-metadata file: a pinned size above the cap is refused before
    anything is fetched, and an unpinned download stops reading at the cap.
    None means no cap.
    """

    def __init__(
        self,
        store: BlobStore,
        open_upstream: OpenUpstream,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_mismatch: OnMismatch | None = None,
        poll_interval: float = 0.05,
        max_size: int | None = None,
        max_metadata_size: int | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.store = store
        self._open_upstream = open_upstream
        self.chunk_size = chunk_size
        self._on_mismatch = on_mismatch
        self._poll = poll_interval
        self._max_size = max_size
        self._max_metadata_size = max_metadata_size
        self._lock = threading.Lock()
        self._downloads: dict[str, _Download] = {}

    def stream(
        self, sha256: str, url: str, size: int | None = None, *, metadata: bool = False
    ) -> Iterator[bytes]:
        """The file's bytes, from the store or from upstream while they arrive.

        ``metadata`` says the blob is a core-metadata file (its own, smaller cap).
        Raises InvalidHash at once for a bad hash.  Download failures are
        raised from the iterator, always before its last byte.  A missing
        file's download starts now, not at the first ``next()``.
        """
        sha256 = validate_sha256(sha256)
        if size is not None and size < 0:
            raise ValueError("size must not be negative")
        try:
            blob = self.store.open_blob(sha256)
        except FileNotFoundError:
            return self._follow(self._join(sha256, url, size, metadata))
        return self._read_blob(blob)

    def ensure(
        self, sha256: str, url: str, size: int | None = None, *, metadata: bool = False
    ) -> None:
        """Make sure the verified blob is in the store (no client attached); raise on failure."""
        sha256 = validate_sha256(sha256)
        if self.store.has(sha256):
            return
        download = self._join(sha256, url, size, metadata)
        while not download.done:
            download.wait(self._poll)
        if download.error is not None:
            raise download.error
        if not self.store.has(sha256):
            raise StoreError(f"blob {sha256} vanished right after it was stored")

    # -- readers ---------------------------------------------------------

    def _read_blob(self, blob: BinaryIO) -> Iterator[bytes]:
        with blob:
            while chunk := blob.read(self.chunk_size):
                yield chunk

    def _follow(self, download: _Download) -> Iterator[bytes]:
        """Send the file as it lands, holding back the last chunk read until it is verified."""
        sha256 = download.sha256
        partial: PartialBlob | None = None
        held = b""  # read but not yet sent
        sent = 0
        try:
            while True:
                if partial is None:
                    try:
                        blob = self.store.open_blob(sha256)
                    except FileNotFoundError:
                        pass
                    else:
                        yield from self._read_blob(blob)  # nothing sent yet: serve it whole
                        return
                    if download.ready or download.done:
                        partial = self.store.open_partial(sha256)
                    if partial is None:
                        if download.done:
                            if download.error is not None:
                                raise download.error
                            if not self.store.has(sha256):
                                raise StoreError(f"download of {sha256} ended without a blob")
                        else:
                            download.wait(self._poll)
                        continue
                data = partial.read(self.chunk_size)
                if data:
                    if held:
                        yield held
                        sent += len(held)
                    held = data
                    continue
                if partial.writer_active():
                    download.wait(self._poll)
                    continue
                # The writer is done, so the file is complete: drain it, then decide.
                while data := partial.read(self.chunk_size):
                    if held:
                        yield held
                        sent += len(held)
                    held = data
                if partial.committed():
                    if sent + len(held) != partial.size():
                        raise StoreError(
                            f"read {sent + len(held)} bytes of {sha256}, expected {partial.size()}"
                        )
                    if held:
                        yield held
                    return
                partial.close()
                partial = None
                if sent:
                    self._raise_failure(download)
                held = b""  # nothing sent: wait for the outcome or a new attempt
        finally:
            if partial is not None:
                partial.close()

    def _raise_failure(self, download: _Download) -> None:
        while not download.done:
            download.wait(self._poll)
        if download.error is not None:
            raise download.error
        raise LeaderFailed(f"the download of {download.sha256} this request followed failed")

    # -- the download ----------------------------------------------------

    def _join(self, sha256: str, url: str, size: int | None, metadata: bool) -> _Download:
        cap = self._max_metadata_size if metadata else self._max_size
        with self._lock:
            download = self._downloads.get(sha256)
            if download is None:
                download = _Download(sha256, url, size, cap)
                self._downloads[sha256] = download
                thread = threading.Thread(
                    target=self._run, args=(download,), name=f"fetch-{sha256[:12]}", daemon=True
                )
                thread.start()
            return download

    def _run(self, download: _Download) -> None:
        error: BaseException | None = None
        try:
            fd = os.open(self.store.lock_path(download.sha256), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    waited = False
                except BlockingIOError:
                    download.mark_ready()  # the leader cleaned up before it started writing
                    fcntl.flock(fd, fcntl.LOCK_EX)  # another process leads; its result decides
                    waited = True
                if not self.store.has(download.sha256):
                    if waited:
                        raise LeaderFailed(
                            f"another process's download of {download.sha256} failed"
                        )
                    # Holding the lock, any unlocked temp file of this blob is a
                    # killed leader's leftover: clear it now rather than at restart.
                    self.store.cleanup_stale_temps(0, sha256=download.sha256)
                    self._download(download)
            finally:
                os.close(fd)
        except BaseException as exc:  # handed to every client of this download
            error = exc
            if not isinstance(exc, LeaderFailed):
                metrics.UPSTREAM_ERRORS.labels("file", type(exc).__name__).inc()
                logger.warning(
                    "download of %s from %s failed: %s",
                    download.sha256, redact_url(download.url), exc,
                )
        finally:
            with self._lock:
                if self._downloads.get(download.sha256) is download:
                    del self._downloads[download.sha256]
            download.finish(error)

    def _download(self, download: _Download) -> None:
        sha256, url, size, cap = download.sha256, download.url, download.size, download.cap
        if size is not None and cap is not None and size > cap:
            # A hostile page can pin any size: the cap holds for pinned files too.
            raise ResponseTooLarge(f"the pinned size, {size} bytes, is more than the {cap} allowed")
        limit = size if size is not None else cap
        started = time.perf_counter()
        body = self._open_upstream(url)
        metrics.observe_upstream("file", started)
        try:
            declared = getattr(body, "content_length", None)
            if size is not None and declared is not None and declared != size:
                self._report(download, f"size {declared}")
                raise SizeMismatch(size, declared)
            if limit is not None and declared is not None and declared > limit:
                raise ResponseTooLarge(
                    f"upstream file is {declared} bytes, more than the {limit} allowed"
                )
            with self.store.open_temp(sha256) as temp:
                download.mark_ready()
                for chunk in body.iter_chunks():
                    if not chunk:
                        continue
                    if limit is not None and temp.size + len(chunk) > limit:
                        if size is None:  # stop at the cap: nothing past it is read or kept
                            raise ResponseTooLarge(
                                f"upstream file exceeds the {limit} bytes allowed"
                            )
                        self._report(download, f"size {temp.size + len(chunk)}")
                        raise SizeMismatch(size, temp.size + len(chunk), at_least=True)
                    temp.write(chunk)
                    download.notify()
                expected = declared if declared is not None else size
                if expected is not None and temp.size < expected:
                    raise UpstreamError(
                        f"upstream body truncated: {temp.size} of {expected} bytes"
                        f" from {redact_url(url)}"
                    )
                actual = temp.hexdigest
                try:
                    temp.commit(sha256, size)
                except VerificationError:
                    self._report(download, actual)
                    raise
        finally:
            body.close()

    def _report(self, download: _Download, actual: str) -> None:
        logger.critical(
            "upstream bytes for %s from %s do not match the pin (got %s)",
            download.sha256, redact_url(download.url), actual,
        )
        if self._on_mismatch is None:
            return
        try:
            self._on_mismatch(download.sha256, download.url, actual)
        except Exception:  # recording must not hide the mismatch itself
            logger.exception("on_mismatch callback failed for %s", download.sha256)


def prime(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pull the first chunk now, so a failure before any byte can still become an HTTP error.

    Returns an iterator over the same bytes.  Useful because a streaming
    response has already sent its 200 status by the time it reads a chunk.
    """
    iterator = iter(chunks)
    try:
        first = next(iterator)
    except StopIteration:
        return iter(())

    def chained() -> Iterator[bytes]:
        yield first
        yield from iterator

    return chained()
