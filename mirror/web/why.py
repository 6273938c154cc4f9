"""``/why/NAME``: the reason behind a refusal, as plain text, for the person behind pip."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool

from mirror.errors import NotFound
from mirror.web.simple import valid_project_name

router = APIRouter()


@router.get("/why/{name}", include_in_schema=False)
async def why(name: str, request: Request, version: str | None = None) -> Response:
    if not valid_project_name(name) or (version is not None and len(version) > 200):
        raise NotFound("no such project.")
    services = request.app.state.services
    explanation = await run_in_threadpool(services.projects.why, canonicalize_name(name), version)
    headers = {"X-IndexGuard-Installable": "yes" if explanation.installable else "no"}
    return PlainTextResponse(explanation.text, headers=headers)
