"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz() -> Response:
    """Alive: the process answers.  Deliberately checks nothing else."""
    return PlainTextResponse("ok\n")


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> Response:
    """Ready: the database answers, the store accepts writes and has room for more.

    A write test alone passes on a full device (creating an empty file needs
    no free blocks), so free space is checked against ``[storage] min_free_bytes``.
    """
    services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        services.store.root.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=services.store.root, prefix=".ready-")
        os.close(fd)
        os.unlink(path)
        checks["storage"] = space_check(services.store.root, services.settings.storage.min_free_bytes)
    except OSError as exc:
        checks["storage"] = f"error: {exc.strerror or type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


def space_check(root: Path, min_free_bytes: int) -> str:
    """``"ok"``, or why the device holding ``root`` is too full to store more (raises OSError)."""
    free = free_bytes(root)
    if free < min_free_bytes:
        return f"error: {free} bytes free on the storage device, below storage.min_free_bytes = {min_free_bytes}"
    return "ok"


def free_bytes(root: Path) -> int:
    """Bytes an unprivileged writer can still use on the device holding ``root``."""
    stats = os.statvfs(root)
    return stats.f_bavail * stats.f_frsize
