"""Domain errors become HTTP responses here, and nowhere else.

A refusal of a named project is also reported to ``on_refused`` (the
review's refusal recorder), which counts who was affected; this is the one
place that sees every refusal together with the request that got it.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from mirror.errors import Busy, FetchFailed, MirrorError, NotFound, Refused, TooManyRequests, Unavailable
from mirror.simple.filenames import file_version


class RefusalSink(Protocol):
    def record(
        self, *, project: str, client: str | None, user_agent: str = "", version: str | None = None,
        filename: str | None = None,
    ) -> None: ...

STATUS: dict[type[MirrorError], int] = {
    NotFound: 404,
    Refused: 403,
    Busy: 503,
    Unavailable: 503,
    FetchFailed: 502,
    TooManyRequests: 429,
}


def status_of(error: MirrorError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(error: MirrorError, base_url: str = "/") -> Response:
    """A one-line plain-text answer that pip's user (or curl) can read.

    A refusal names the page that explains it, since pip and uv print no body.
    """
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    details = f" Details: {base_url}why/{error.project}" if isinstance(error, Refused) and error.project else ""
    return PlainTextResponse(
        f"indexguard: {error.message}{details}\n", status_code=status_of(error), headers=headers
    )


def record_refusal(sink: RefusalSink, request: Request, error: Refused) -> None:
    """Tell ``sink`` who was refused what: the project, and the release or file the path named."""
    if not error.project:
        return
    params = request.path_params
    filename = params.get("filename") if isinstance(params.get("filename"), str) else None
    version = params.get("version") if isinstance(params.get("version"), str) else None
    if version is None and filename:
        # foo-1.0-py3-none-any.whl, or its .metadata / .provenance companion
        version = file_version(filename) or file_version(filename.rsplit(".", 1)[0])
    sink.record(
        project=error.project,
        client=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent", ""),
        version=version,
        filename=filename,
    )


def install_error_handlers(app: FastAPI, on_refused: RefusalSink | None = None) -> None:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MirrorError)
        if on_refused is not None and isinstance(exc, Refused):
            record_refusal(on_refused, request, exc)
        return error_response(exc, str(request.base_url))

    app.add_exception_handler(MirrorError, handle)
