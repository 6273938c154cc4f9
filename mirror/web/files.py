"""The file route: serve a pinned distribution (or its core metadata) by sha256.

A stored blob is sent with sendfile and Range support.  A missing one is
streamed from upstream while it is hashed: the fetcher holds back the last
chunk until the whole body matches the pinned hash, and on a mismatch the
response is cut short, so no client ever completes an unverified file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Send

from mirror import metrics
from mirror.container import Services
from mirror.serving.file_service import UNDERIVED, UNFETCHED, FileTarget
from mirror.errors import FetchFailed, NotFound, Refused, Unavailable
from mirror.serving.pagebuild import PROVENANCE_SUFFIX
from mirror.serving.fetcher import prime
from mirror.serving.store import StoreError, VerificationError
from mirror.upstream.errors import CircuitOpen, UpstreamError
from mirror.web.client_info import request_info
from mirror.web.errors import record_refusal

SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter()


class BlobResponse(FileResponse):
    """A stored blob, read on the event loop when the page cache already holds it.

    Starlette reads every 64 KiB piece in a worker thread; those thread hops,
    not the disk or the socket, held a warm download to under half of what a
    static server manages.  A ``preadv`` with ``RWF_NOWAIT`` never blocks: it
    reads cached pages at once and reports a miss, and only a miss goes to a
    thread.  Memory per download stays flat at one piece.
    """

    chunk_size = 1024 * 1024

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        if send_header_only or send_pathsend or not _NOWAIT:
            return await super()._handle_simple(send, send_header_only, send_pathsend)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            offset = 0
            while offset < size:
                want = min(self.chunk_size, size - offset)
                chunk = _read_cached(fd, want, offset)
                if chunk is None:
                    chunk = await anyio.to_thread.run_sync(os.pread, fd, want, offset)
                if not chunk:  # the blob shrank under us: never pretend it ended well
                    raise OSError(f"short read of {self.path}")
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": offset < size})
            if size == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(fd)


_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def _read_cached(fd: int, size: int, offset: int) -> bytes | bytearray | None:
    """Read from the page cache without blocking; None when the disk would be needed.

    A full read hands over the buffer itself: one allocation per piece, no copy.
    """
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], offset, _NOWAIT)
    except OSError:  # BlockingIOError: not cached; others: let the thread path report it
        return None
    if got == size:
        return buffer
    return bytes(memoryview(buffer)[:got]) if got else None


@router.api_route("/files/{sha256}/{filename}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_file(sha256: str, filename: str, request: Request) -> Response:
    if (
        not SHA256.match(sha256)
        or "/" in filename
        or "\\" in filename
        or len(filename) > 512
        or not filename.isprintable()  # NUL and other controls: PostgreSQL text cannot even hold NUL
    ):
        raise NotFound("no such file.")
    services = request.app.state.services
    # Warm path: a recently allowed file whose stat shows it intact costs no thread hop.
    target = services.files.warm(sha256, filename)
    if target is not None:
        path = services.store.known_good(target.sha256, target.size)
        if path is not None:
            metrics.FILE_HIT.inc()
            return _blob_response(path, target, filename)
    else:
        target = await run_in_threadpool(services.files.target, sha256, filename)
    if target.sha256 == UNDERIVED:  # core metadata the mirror reads out of the wheel (fetched now if need be)
        target = await request.app.state.upstream_room.run(_derived_metadata, services, sha256, filename)
    if target.sha256 == UNFETCHED:  # PEP 740 provenance the mirror has not fetched yet
        target = await request.app.state.upstream_room.run(services.files.provenance_target, sha256, filename)
        if target.sha256 == UNFETCHED:
            raise NotFound("upstream has no provenance for this file.")
    # Size always, a re-hash when small or when the integrity mark is off; a corrupt
    # blob is quarantined and None sends us to upstream for a fresh, verified copy.
    path = await run_in_threadpool(services.store.verified_path, target.sha256, target.size)
    if path is not None and target.needs_scan:
        # Stored, but not looked at with today's rules: scan, then ask the gate again.
        await request.app.state.upstream_room.run(services.files.screen, target)
        target = await run_in_threadpool(services.files.target, sha256, filename)
    ahead = services.ahead if target.is_metadata else None  # a first read: its dependencies come next
    if path is not None:
        metrics.FILE_HIT.inc()
        if ahead is not None:
            ahead.stored(target.sha256, path, request_info(request, services.clock()))
        return _blob_response(path, target, filename)
    headers = {"ETag": f'"{target.sha256}"', "Cache-Control": IMMUTABLE}
    if target.size is not None:
        headers["Content-Length"] = str(target.size)
    if request.method == "HEAD":  # what a GET would say, without fetching anything
        return Response(status_code=200, media_type=_media_type(target, filename), headers=headers)
    metrics.FILE_MISS.inc()
    # Wait for the first byte in the upstream room, so a download that fails
    # before it (upstream down, slow, refused, disk full) becomes a clear 502,
    # not a cut 200.  A failure mid-stream makes the server cut the connection.
    chunks = await request.app.state.upstream_room.run(_first_bytes, services, target, filename)
    if ahead is not None:
        chunks = ahead.streamed(target.sha256, chunks, request_info(request, services.clock()))
    if target.needs_scan:
        refusals = getattr(request.app.state, "refusals", None)
        chunks = _scanned_before_the_last_byte(
            chunks, services, target, sha256,
            on_refused=lambda exc: record_refusal(refusals, request, exc) if refusals is not None else None,
        )
    return StreamingResponse(chunks, media_type=_media_type(target, filename), headers=headers)


def _scanned_before_the_last_byte(
    chunks: Iterator[bytes], services: Services, target: FileTarget, url_sha256: str,
    on_refused: Callable[[Refused], None],
) -> Iterator[bytes]:
    """Hold back one more chunk than the fetcher does: the verified file is scanned first.

    When the fetcher's chunks run out the blob is verified and stored; the
    scan runs on it, and if the gate now refuses the file the connection is
    cut before the last byte, so no client ever completes a refused file.
    The refusal never reaches the error handlers (the response had begun),
    so it is reported to ``on_refused`` here.
    """
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        held = chunk
    services.files.screen(target)
    try:
        services.files.target(url_sha256, target.filename)
    except Refused as exc:
        on_refused(exc)
        raise  # the server cuts the connection
    if held is not None:
        yield held


def _first_bytes(services: Services, target: FileTarget, filename: str) -> Iterator[bytes]:
    with _fetch_errors(filename):
        return prime(
            services.fetcher.stream(
                target.sha256, target.upstream_url, size=target.size, metadata=target.is_metadata
            )
        )


def _derived_metadata(services: Services, sha256: str, filename: str) -> FileTarget:
    with _fetch_errors(filename):  # reading the metadata out may fetch the wheel first
        return services.files.derived_metadata_target(sha256, filename)


@contextlib.contextmanager
def _fetch_errors(filename: str) -> Iterator[None]:
    """A fetch from upstream that failed, as the mirror says it (502, or 503 while upstream is failing)."""
    try:
        yield
    except VerificationError:
        raise FetchFailed(f"upstream's bytes for '{filename}' do not match the pinned sha256.") from None
    except CircuitOpen as exc:
        raise Unavailable(f"upstream is failing; '{filename}' is not cached yet ({exc}).", retry_after=exc.retry_after) from None
    except (UpstreamError, StoreError) as exc:
        raise FetchFailed(f"could not fetch '{filename}' from upstream: {exc}") from None


def _blob_response(path: Path, target: FileTarget, filename: str) -> Response:
    headers = {"ETag": f'"{target.sha256}"', "Cache-Control": IMMUTABLE}
    return BlobResponse(path, media_type=_media_type(target, filename), headers=headers, filename=None)


def _media_type(target: FileTarget, filename: str) -> str:
    if filename.endswith(PROVENANCE_SUFFIX):
        return "application/vnd.pypi.integrity.v1+json"
    if target.is_metadata:
        return "text/plain; charset=utf-8"
    if filename.endswith(".whl") or filename.endswith(".zip"):
        return "application/zip"
    if filename.endswith(".tar.gz"):
        return "application/gzip"
    return "application/octet-stream"
