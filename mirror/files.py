"""The file route: serve a pinned distribution (or its core metadata) by sha256.

A stored blob is sent with sendfile and Range support.  A missing one is
streamed from upstream while it is hashed: the fetcher holds back the last
chunk until the whole body matches the pinned hash, and on a mismatch the
response is cut short, so no client ever completes an unverified file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from starlette.concurrency import run_in_threadpool

from mirror import metrics
from mirror.fetch import StoreError, UpstreamError, prime
from mirror.store import VerificationError

if TYPE_CHECKING:
    from mirror.services import FileTarget, Services

SHA256 = re.compile(r"^[0-9a-f]{64}$")
METADATA_SUFFIX = ".metadata"
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter()


class BlobResponse(FileResponse):
    """A stored blob, read in 256 KiB pieces instead of Starlette's 64 KiB.

    Each piece costs a worker-thread hop and a trip through the ASGI stack;
    at 64 KiB that overhead, not the disk or the socket, limited a warm
    download to about a third of what a static server manages.  Memory per
    download stays flat at about one piece.
    """

    chunk_size = 256 * 1024


@router.get("/files/{sha256}/{filename}", include_in_schema=False)
async def get_file(sha256: str, filename: str, request: Request) -> Response:
    if (
        not SHA256.match(sha256)
        or "/" in filename
        or "\\" in filename
        or len(filename) > 512
        or not filename.isprintable()  # NUL and other controls: PostgreSQL text cannot even hold NUL
    ):
        return PlainTextResponse("indexguard: no such file.\n", status_code=404)
    services = request.app.state.services
    # Warm path: a recently allowed file already in the store costs no thread hop.
    target = services.warm_file(sha256, filename)
    if target is not None:
        path = services.store.path(target.sha256)
        if path.exists():
            metrics.FILE_HIT.inc()
            return _blob_response(path, target, filename)
    return await run_in_threadpool(_serve, services, sha256, filename, request)


def _serve(services: Services, sha256: str, filename: str, request: Request) -> Response:
    target = services.file_target(sha256, filename, request)
    if isinstance(target, Response):
        return target
    path = services.store.path(target.sha256)
    if path.exists():
        metrics.FILE_HIT.inc()
        return _blob_response(path, target, filename)
    headers = {"ETag": f'"{target.sha256}"', "Cache-Control": IMMUTABLE}
    if target.size is not None:
        headers["Content-Length"] = str(target.size)
    metrics.FILE_MISS.inc()
    try:
        # Wait for the first byte, so a download that fails before it (upstream
        # down, slow, refused, disk full) becomes a clear 502, not a cut 200.
        chunks = prime(services.fetcher.stream(target.sha256, target.upstream_url, size=target.size))
    except (UpstreamError, VerificationError, StoreError) as exc:
        return PlainTextResponse(
            f"indexguard: could not fetch '{filename}' from upstream: {exc}\n", status_code=502
        )
    # A fetch failure raised mid-stream makes the server cut the connection.
    return StreamingResponse(chunks, media_type=_media_type(target, filename), headers=headers)


def _blob_response(path: Path, target: FileTarget, filename: str) -> Response:
    headers = {"ETag": f'"{target.sha256}"', "Cache-Control": IMMUTABLE}
    return BlobResponse(path, media_type=_media_type(target, filename), headers=headers, filename=None)


def _media_type(target: FileTarget, filename: str) -> str:
    if target.is_metadata:
        return "text/plain; charset=utf-8"
    if filename.endswith(".whl") or filename.endswith(".zip"):
        return "application/zip"
    if filename.endswith(".tar.gz"):
        return "application/gzip"
    return "application/octet-stream"
