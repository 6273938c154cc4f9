"""The Simple API routes: thin, they negotiate, look up stored bytes and answer.

Responses are built from the stored, pre-compressed bodies; nothing here
renders a page for a known project.
"""

from __future__ import annotations

import gzip
import re

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from packaging.utils import canonicalize_name

from mirror.serving.pages import PageUnavailable, ServedPage
from mirror.simple.model import ProjectList
from mirror.simple.negotiate import choose_format
from mirror.simple.render import render_list_html, render_list_json

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# PEP 508 names, which is also what PEP 503 normalisation expects as input.
_VALID_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
MAX_NAME_LENGTH = 200
PAGE_CACHE_CONTROL = "max-age=60, public"

router = APIRouter()


def valid_project_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and _VALID_NAME.match(name) is not None


@router.get("/simple/", include_in_schema=False)
def project_list(request: Request) -> Response:
    media_type = _negotiate(request)
    if media_type is None:
        return _not_acceptable()
    names = request.app.state.services.known_projects()
    listing = ProjectList(names=tuple(names))
    body = render_list_json(listing) if media_type == JSON_TYPE else render_list_html(listing)
    return Response(body, media_type=media_type, headers={"Vary": "Accept"})


@router.get("/simple/{name}", include_in_schema=False)
def project_no_slash(name: str, request: Request) -> Response:
    if not valid_project_name(name):
        return _bad_name(name)
    return _redirect(request, f"/simple/{canonicalize_name(name)}/")


@router.get("/simple/{name}/", include_in_schema=False)
async def project_page(name: str, request: Request) -> Response:
    if not valid_project_name(name):
        return _bad_name(name)
    canonical = canonicalize_name(name)
    if canonical != name:
        return _redirect(request, f"/simple/{canonical}/")
    media_type = _negotiate(request)
    if media_type is None:
        return _not_acceptable()
    services = request.app.state.services
    warm = services.warm_page(canonical)
    if warm is not None:  # answered from memory, on the event loop
        return _page_response(warm, media_type, request)
    try:
        # May screen, query the database or ask upstream: not on the event loop.
        outcome = await run_in_threadpool(services.project_page, canonical, request)
    except PageUnavailable as exc:
        return PlainTextResponse(
            f"indexguard: the upstream index is unavailable and '{canonical}' is not cached yet ({exc}).\n",
            status_code=503,
            headers={"Retry-After": "30"},
        )
    if isinstance(outcome, Response):  # refused by screening, or not found
        return outcome
    return _page_response(outcome, media_type, request)


def _page_response(page: ServedPage, media_type: str, request: Request) -> Response:
    suffix = "j" if media_type == JSON_TYPE else "h"
    etag = f'"{page.etag}-{suffix}"'
    headers = {
        "ETag": etag,
        "Vary": "Accept, Accept-Encoding",
        "Cache-Control": PAGE_CACHE_CONTROL,
    }
    if page.stale:
        headers["X-IndexGuard-Stale"] = "1"
        headers["Warning"] = '110 - "Response is Stale"'
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    body = page.json_gz if suffix == "j" else page.html_gz
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
    else:
        body = gzip.decompress(body)
    if media_type == "text/html":
        media_type = "text/html; charset=utf-8"
    return Response(body, media_type=media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _negotiate(request: Request) -> str | None:
    fmt = request.query_params.get("format")
    if fmt is not None:
        fmt = fmt.replace(" ", "+")  # an unencoded "+" in a query string arrives as a space
    return choose_format(request.headers.get("accept"), fmt)


def _not_acceptable() -> Response:
    return PlainTextResponse(
        "indexguard: none of the requested content types is available; "
        f"ask for {JSON_TYPE}, application/vnd.pypi.simple.v1+html or text/html.\n",
        status_code=406,
        headers={"Vary": "Accept"},
    )


def _bad_name(name: str) -> Response:
    shown = name[:80].encode("ascii", "backslashreplace").decode()
    return PlainTextResponse(
        f"indexguard: {shown!r} is not a valid project name.\n", status_code=404
    )


def _redirect(request: Request, path: str) -> Response:
    query = request.url.query
    location = request.scope.get("root_path", "") + path + (f"?{query}" if query else "")
    return RedirectResponse(location, status_code=301)
