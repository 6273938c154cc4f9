"""Upload of internal packages through the legacy upload API (what ``twine upload`` speaks).

Uploaded files become internal: their names are served only from internal
sources from then on.  The upload token is compared in constant time and
never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool

from mirror.serving.pagebuild import parse_dist_filename

router = APIRouter()

MAX_UPLOAD_BYTES = 4 * 1024 * 1024 * 1024


@router.post("/legacy/", include_in_schema=False)
async def legacy_upload(request: Request) -> Response:
    services = request.app.state.services
    token = services.internal.settings.upload_token
    if not token:
        return _error(403, "uploads are disabled: set [internal] upload_token to enable them")
    if not _authorised(request.headers.get("authorization", ""), token):
        return _error(401, "invalid or missing upload credentials", {"WWW-Authenticate": 'Basic realm="indexguard"'})
    form = await request.form(max_files=1, max_fields=100, max_part_size=1024 * 1024)
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


def _authorised(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, _, password = decoded.partition(":")
    return hmac.compare_digest(password.encode(), token.encode())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(f"indexguard: {message}\n", status_code=status, headers=headers)
