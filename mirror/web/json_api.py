"""The project JSON API routes, ``/pypi/NAME/json`` and ``/pypi/NAME/VERSION/json``.

Served from the same page as the Simple API, through the same gate: a
refused project is refused here too, with the same reason.
"""

from __future__ import annotations

import gzip

from fastapi import APIRouter, Request
from fastapi.responses import Response
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool

from mirror.errors import NotFound
from mirror.simple.json_api import render_json_api
from mirror.simple.parse import parse_project_json
from mirror.web.simple import served_page, valid_project_name

router = APIRouter()


@router.api_route("/pypi/{name}/json", methods=["GET", "HEAD"], include_in_schema=False)
async def project_json(name: str, request: Request) -> Response:
    return await _document(request, name, None)


@router.api_route("/pypi/{name}/{version}/json", methods=["GET", "HEAD"], include_in_schema=False)
async def release_json(name: str, version: str, request: Request) -> Response:
    return await _document(request, name, version)


async def _document(request: Request, name: str, version: str | None) -> Response:
    if not valid_project_name(name):
        raise NotFound("no such project.")
    project = canonicalize_name(name)
    served = await served_page(request, project)
    page_url = str(request.base_url) + f"simple/{project}/"
    page = parse_project_json(gzip.decompress(served.json_gz), base_url=page_url)
    services = request.app.state.services
    metadata = await run_in_threadpool(services.projects.known_metadata, project, version) if version else None
    body = render_json_api(page, page_url, version=version, metadata=metadata)
    if body is None:
        raise NotFound(f"'{project}' has no release {version!r} that the mirror serves.")
    return Response(body, media_type="application/json", headers={"Vary": "Accept-Encoding", "ETag": f'"{served.etag}-a"'})
