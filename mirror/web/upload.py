"""Upload of internal packages through the legacy upload API (what ``twine upload`` speaks).

Uploaded files become internal: their names are served only from internal
sources from then on.  That is why an upload may only add to a name already
internal (configured in ``[internal] names`` or ``patterns``, or held by an
internal source): otherwise the upload token could take over any public
project's page.  A new internal name is created only when
``[internal] upload_creates_names`` says so, and never over a public project
the mirror has already screened.  The request body is bounded by
``[internal] max_upload_bytes`` however it is sent.  The upload token is
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool
from starlette.types import Message

from mirror.review.auth import basic_password
from mirror.simple.filenames import parse_dist_filename

router = APIRouter()


class UploadTooLarge(Exception):
    """The request body went past ``[internal] max_upload_bytes``."""


@router.post("/legacy/", include_in_schema=False)
async def legacy_upload(request: Request) -> Response:
    services = request.app.state.services
    token = services.internal.settings.upload_token
    if not token:
        return _error(403, "uploads are disabled: set [internal] upload_token to enable them")
    if not _authorised(request.headers.get("authorization", ""), token):
        return _error(401, "invalid or missing upload credentials", {"WWW-Authenticate": 'Basic realm="indexguard"'})
    limit = services.internal.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return _too_large(limit)
    try:
        form = await bounded(request, limit).form(max_files=1, max_fields=100, max_part_size=1024 * 1024)
    except UploadTooLarge:
        return _too_large(limit)
    try:
        if form.get(":action") != "file_upload":
            return _error(400, "only :action=file_upload is supported")
        upload = form.get("content")
        if upload is None or isinstance(upload, str):
            return _error(400, "missing file content")
        filename = upload.filename or ""
        parsed = parse_dist_filename(filename)
        if parsed is None:
            return _error(400, f"not a valid wheel or sdist filename: {filename[:200]!r}")
        name = form.get("name")
        if isinstance(name, str) and name and canonicalize_name(name) != parsed[0]:
            return _error(400, f"filename {filename!r} does not belong to project {name!r}")
        refusal = await run_in_threadpool(_refuse_name, services, parsed[0])
        if refusal is not None:
            return refusal
        digest = form.get("sha256_digest")
        requires_python = form.get("requires_python")
        try:
            await run_in_threadpool(
                services.internal.add_file,
                filename,
                upload.file,
                source="upload",
                expected_sha256=digest if isinstance(digest, str) and digest else None,
                requires_python=requires_python if isinstance(requires_python, str) and requires_python else None,
            )
        except ValueError as exc:
            return _error(400, str(exc))
    finally:
        await form.close()
    services.forget_internal(parsed[0])
    return PlainTextResponse("OK\n")


def bounded(request: Request, limit: int) -> Request:
    """``request`` whose body raises UploadTooLarge once more than ``limit`` bytes arrived.

    Counts what is received, not what is declared: a chunked body has no
    Content-Length, and a declared one may lie.
    """
    received = 0
    receive = request.receive

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLarge()
        return message

    return Request(request.scope, counting)


def _refuse_name(services: Any, project: str) -> Response | None:
    """Why an upload may not add files to ``project``, or None when it may."""
    internal = services.internal
    if internal.is_internal(project):
        return None
    if not internal.settings.upload_creates_names:
        return _error(
            403,
            f"'{project}' is not an internal name; uploads only add to names in [internal] names or patterns "
            "(or set [internal] upload_creates_names = true to let an upload create one)",
        )
    if services.screening.project_row(project) is not None:
        return _error(
            403,
            f"'{project}' is a public project this mirror has screened; add it to [internal] names to take it over",
        )
    return None


def _too_large(limit: int) -> Response:
    return _error(413, f"the upload is larger than {limit} bytes ([internal] max_upload_bytes)")


def _authorised(header: str, token: str) -> bool:
    password = basic_password(header)
    return password is not None and hmac.compare_digest(password.encode(), token.encode())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(f"indexguard: {message}\n", status_code=status, headers=headers)
