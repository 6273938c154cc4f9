"""Domain errors become HTTP responses here, and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from mirror.errors import Busy, FetchFailed, MirrorError, NotFound, Refused, TooManyRequests, Unavailable

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


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MirrorError)
        return error_response(exc, str(request.base_url))

    app.add_exception_handler(MirrorError, handle)
