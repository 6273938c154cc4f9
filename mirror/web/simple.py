"""The Simple API routes: thin, they negotiate, look up stored bytes and answer.

Responses are built from the stored, pre-compressed bodies; nothing here
renders a page for a known project.
"""

from __future__ import annotations

import gzip

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from packaging.utils import InvalidName, canonicalize_name

from mirror.serving.pages import NO_HTML, ServedPage
from mirror.simple.model import ProjectList
from mirror.simple.negotiate import choose_format
from mirror.simple.render import render_list_html, render_list_json
from mirror.web.client_info import request_info

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
MAX_NAME_LENGTH = 200
PAGE_CACHE_CONTROL = "max-age=60, public"

router = APIRouter()


def valid_project_name(name: str) -> bool:
    """A PEP 508 name (what PEP 503 normalisation expects), of a sane length."""
    try:
        canonicalize_name(name, validate=True)
    except InvalidName:
        return False
    return len(name) <= MAX_NAME_LENGTH


@router.api_route("/simple/", methods=["GET", "HEAD"], include_in_schema=False)
def project_list(request: Request) -> Response:
    media_type = _negotiate(request)
    if media_type is None:
        return _not_acceptable()
    listing = ProjectList(names=tuple(request.app.state.services.projects.installable()))
    body = render_list_json(listing) if media_type == JSON_TYPE else render_list_html(listing)
    return Response(body, media_type=media_type, headers={"Vary": "Accept"})


@router.api_route("/simple/{name}", methods=["GET", "HEAD"], include_in_schema=False)
def project_no_slash(name: str, request: Request) -> Response:
    if not valid_project_name(name):
        return _bad_name(name)
    return _redirect(request, f"/simple/{canonicalize_name(name)}/")


@router.api_route("/simple/{name}/", methods=["GET", "HEAD"], include_in_schema=False)
async def project_page(name: str, request: Request) -> Response:
    if not valid_project_name(name):
        return _bad_name(name)
    canonical = canonicalize_name(name)
    if canonical != name:
        return _redirect(request, f"/simple/{canonical}/")
    media_type = _negotiate(request)
    if media_type is None:
        return _not_acceptable()
    page = await served_page(request, canonical)
    if html_unrendered(page, media_type):
        page = await run_in_threadpool(request.app.state.services.pages.with_html, page)
    return _page_response(page, media_type, request)


async def served_page(request: Request, project: str) -> ServedPage:
    """The page of a canonical project name, from the cheapest place that can answer."""
    services = request.app.state.services
    page = services.projects.warm(project)  # answered from memory, on the event loop
    if page is None:  # the database may answer: the shared pool
        page = await run_in_threadpool(services.projects.ready, project)
    if page is None:  # upstream is needed: the bounded room
        info = request_info(request, services.clock())
        page = await request.app.state.upstream_room.run(services.projects.page, project, info)
    return page


def _page_response(page: ServedPage, media_type: str, request: Request) -> Response:
    status, headers, body = page_reply(
        page, media_type, request.headers.get("accept-encoding", ""), request.headers.get("if-none-match", "")
    )
    response = Response(body, status_code=status)
    response.headers.update(headers)
    return response


def html_unrendered(page: ServedPage, media_type: str) -> bool:
    """HTML is asked for and the page has none yet: it is rendered (off the event loop) before the reply."""
    return media_type != JSON_TYPE and page.html_gz == NO_HTML


def page_reply(
    page: ServedPage, media_type: str, accept_encoding: str, if_none_match: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for a stored page: one rule for the route and the warm fast path."""
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
    if etag in _etags(if_none_match):
        return 304, headers, b""
    body = page.json_gz if suffix == "j" else page.html_gz
    if "gzip" in accept_encoding:
        headers["Content-Encoding"] = "gzip"
    else:
        body = gzip.decompress(body)
    headers["Content-Type"] = "text/html; charset=utf-8" if media_type == "text/html" else media_type
    headers["Content-Length"] = str(len(body))
    return 200, headers, body


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
