"""The audit's share of the admin API: the SBOM, known vulnerabilities and audit runs.

Reading these needs the reviewer role: an SBOM and a vulnerability list
tell an attacker exactly which weak versions a site runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from mirror.audit.sbom import MEDIA_TYPE as CYCLONEDX_JSON, sbom_chunks
from mirror.db.models import AuditRun, Vulnerability
from mirror.review.api import project_name
from mirror.review.auth import require

router = APIRouter(prefix="/api/v1", tags=["audit"])
# The one place the audit routes meet authentication.
reviewer = require("reviewer")


@router.get("/sbom", summary="CycloneDX SBOM of every cached release and file (streamed)")
def sbom(request: Request, include_pinned: bool = False, _: Any = Depends(reviewer)) -> StreamingResponse:
    """Streamed as it is read from the database: memory stays flat however large the mirror.

    ``include_pinned`` adds the files the mirror pinned from upstream listings but never downloaded.
    """
    chunks = sbom_chunks(request.app.state.services, include_pinned=include_pinned)
    return StreamingResponse(chunks, media_type=CYCLONEDX_JSON)


@router.get("/vulnerabilities", summary="Known vulnerabilities of cached releases")
def vulnerabilities(
    request: Request,
    project: str | None = None,
    include_resolved: bool = False,
    limit: int = Query(500, ge=1, le=5000),
    _: Any = Depends(reviewer),
) -> dict[str, Any]:
    return {"vulnerabilities": _vulnerabilities(request, project_name(project) if project else None,
                                                include_resolved, limit)}


@router.get("/projects/{name}/vulnerabilities", summary="Known vulnerabilities of one project's releases")
def project_vulnerabilities(request: Request, name: str, include_resolved: bool = False,
                            _: Any = Depends(reviewer)) -> dict[str, Any]:
    return {"vulnerabilities": _vulnerabilities(request, project_name(name), include_resolved, 5000)}


@router.get("/audit-runs", summary="Recent audit runs with their counts, newest first")
def audit_runs(request: Request, limit: int = Query(20, ge=1, le=500), _: Any = Depends(reviewer)) -> dict[str, Any]:
    with request.app.state.services.sessions() as session:
        runs = session.scalars(select(AuditRun).order_by(AuditRun.started_at.desc(), AuditRun.id.desc()).limit(limit))
        return {"runs": [_run(r) for r in runs]}


def _vulnerabilities(request: Request, project: str | None, include_resolved: bool, limit: int) -> list[dict[str, Any]]:
    query = select(Vulnerability)
    if project is not None:
        query = query.where(Vulnerability.project == project)
    if not include_resolved:
        query = query.where(Vulnerability.resolved_at.is_(None))
    query = query.order_by(Vulnerability.project, Vulnerability.version, Vulnerability.vuln_id).limit(limit)
    with request.app.state.services.sessions() as session:
        return [
            {
                "project": v.project,
                "version": v.version,
                "id": v.vuln_id,
                "aliases": list(v.aliases or []),
                "summary": v.summary,
                "fix_versions": list(v.fix_versions or []),
                "severity": v.severity,
                "source": v.source,
                "first_seen": v.first_seen.isoformat(),
                "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None,
            }
            for v in session.scalars(query)
        ]


def _run(run: AuditRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "holder": run.holder,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "projects": run.projects,
        "new_findings": run.new_findings,
        "resolved_findings": run.resolved_findings,
        "new_critical": run.new_critical,
        "new_vulnerabilities": run.new_vulnerabilities,
        "errors": run.errors,
        "details": run.details,
    }
