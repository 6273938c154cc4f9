"""Read-only views of the screening record, shared by the API, the pages and the CLI.

Each function takes an open session and the current time and returns the
API's own models, so that what a reviewer sees in the browser and what a
script gets from the API can never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from packaging.utils import canonicalize_name
from sqlalchemy import desc, func, select
from sqlalchemy.orm import Session

from mirror.db.models import Decision, Event, FindingRow, Project, Release, Snapshot, Vulnerability
from mirror.screening.decisions import effective_project_state, release_blocked
from mirror.review.schemas import (
    AuditEntry,
    AuditPage,
    DecisionOut,
    EventOut,
    FindingOut,
    History,
    ProjectList,
    ProjectOut,
    Queue,
    QueueCounts,
    QueueRelease,
    ReleaseOut,
)

SEVERITIES = ("critical", "high", "medium", "low", "info")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
PROJECT_STATES = ("allowed", "quarantined", "denied")
TOP_FINDINGS = 3


def severity_rank(severity: str) -> int:
    """Sort key: critical first, unknown words last."""
    return _RANK.get(severity, len(SEVERITIES))


def project_out(row: Project, now: datetime, findings: list[FindingRow]) -> ProjectOut:
    open_findings = sorted((f for f in findings if f.resolved_at is None), key=lambda f: (severity_rank(f.severity), f.id))
    counts: dict[str, int] = defaultdict(int)
    for finding in open_findings:
        counts[finding.severity] += 1
    return ProjectOut(
        name=row.name,
        source=row.source,
        state=row.state,
        effective_state=effective_project_state(row, now) or row.state,
        reason=row.reason,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        first_seen=row.first_seen,
        allow_until=row.allow_until,
        findings=dict(counts),
        top_findings=[f.title for f in open_findings[:TOP_FINDINGS]],
    )


def _findings_by_project(session: Session, names: list[str]) -> dict[str, list[FindingRow]]:
    grouped: dict[str, list[FindingRow]] = defaultdict(list)
    if names:
        for row in session.scalars(select(FindingRow).where(FindingRow.project.in_(names))):
            grouped[row.project].append(row)
    return grouped


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_projects(
    session: Session,
    now: datetime,
    *,
    query: str = "",
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ProjectList:
    """Projects whose name contains ``query`` (compared in normal form), newest decision first."""
    where = []
    if query:
        where.append(Project.name.like(f"%{_escape_like(normal_query(query))}%", escape="\\"))
    if state:
        where.append(Project.state == state)
    total = session.scalar(select(func.count()).select_from(Project).where(*where)) or 0
    rows = list(
        session.scalars(
            select(Project).where(*where).order_by(desc(Project.decided_at), Project.name).limit(limit).offset(offset)
        )
    )
    findings = _findings_by_project(session, [r.name for r in rows])
    return ProjectList(
        items=[project_out(r, now, findings[r.name]) for r in rows], total=total, limit=limit, offset=offset
    )


def normal_query(query: str) -> str:
    """A search string in the names' normal form (PEP 503: lower case, runs of -_. as -)."""
    return canonicalize_name(query.strip())


def review_queue(session: Session, now: datetime, *, limit: int = 200) -> Queue:
    """What waits for a person: quarantined projects and held releases, oldest first."""
    quarantined = select(Project).where(Project.state == "quarantined")
    project_count = session.scalar(select(func.count()).select_from(quarantined.subquery())) or 0
    rows = list(session.scalars(quarantined.order_by(Project.decided_at, Project.name).limit(limit)))
    findings = _findings_by_project(session, [r.name for r in rows])
    held = [
        r
        for r in session.scalars(
            select(Release).where(Release.state == "held").order_by(Release.decided_at, Release.id)
        )
        if release_blocked(r, now)
    ]
    return Queue(
        counts=QueueCounts(projects=project_count, releases=len(held)),
        projects=[project_out(r, now, findings[r.name]) for r in rows],
        releases=[
            QueueRelease(
                project=r.project,
                version=r.version,
                state=r.state,
                reason=r.reason,
                upload_time=r.upload_time,
                held_until=r.held_until,
                decided_by=r.decided_by,
                decided_at=r.decided_at,
            )
            for r in held[:limit]
        ],
    )


def project_history(session: Session, name: str, now: datetime) -> History | None:
    """Everything recorded about one project: the evidence and every decision."""
    row = session.get(Project, name)
    if row is None:
        return None
    findings = list(
        session.scalars(select(FindingRow).where(FindingRow.project == name).order_by(FindingRow.id))
    )
    decisions = list(
        session.scalars(
            select(Decision).where(Decision.project == name).order_by(desc(Decision.at), desc(Decision.id))
        )
    )
    releases = list(session.scalars(select(Release).where(Release.project == name).order_by(Release.id)))
    events = list(
        session.scalars(select(Event).where(Event.project == name).order_by(desc(Event.at), desc(Event.id)).limit(200))
    )
    snapshot = session.scalars(
        select(Snapshot).where(Snapshot.project == name).order_by(desc(Snapshot.taken_at), desc(Snapshot.id)).limit(1)
    ).first()
    first = min((d for d in decisions if d.version is None), key=lambda d: d.id, default=None)
    findings.sort(key=lambda f: (f.resolved_at is not None, severity_rank(f.severity), f.id))
    return History(
        project=project_out(row, now, findings),
        requested=dict(first.request) if first is not None and first.request else None,
        findings=[FindingOut.model_validate(f) for f in findings],
        decisions=[DecisionOut.model_validate(d) for d in decisions],
        releases=[
            ReleaseOut(
                version=r.version,
                state=r.state,
                blocked=release_blocked(r, now),
                reason=r.reason,
                upload_time=r.upload_time,
                held_until=r.held_until,
                decided_by=r.decided_by,
                decided_at=r.decided_at,
            )
            for r in releases
        ],
        events=[EventOut.model_validate(e) for e in events],
        snapshot=dict(snapshot.facts) if snapshot is not None else None,
    )


def audit_log(session: Session, *, limit: int = 50, offset: int = 0, project: str | None = None) -> AuditPage:
    """Decisions and critical events, newest first.

    The two tables are merged by time; each contributes at most
    ``offset + limit`` rows, which is what the merge can need.
    """
    decision_filter = [Decision.project == project] if project else []
    event_filter = [Event.severity == "critical"] + ([Event.project == project] if project else [])
    window = offset + limit
    decisions = session.scalars(
        select(Decision).where(*decision_filter).order_by(desc(Decision.at), desc(Decision.id)).limit(window)
    )
    events = session.scalars(
        select(Event).where(*event_filter).order_by(desc(Event.at), desc(Event.id)).limit(window)
    )
    entries = [
        AuditEntry(
            type="decision",
            id=d.id,
            at=d.at,
            project=d.project,
            version=d.version,
            action=d.action,
            actor=d.actor,
            reason=d.reason,
            expires_at=d.expires_at,
            undone_by=d.undone_by,
        )
        for d in decisions
    ] + [
        AuditEntry(
            type="event",
            id=e.id,
            at=e.at,
            project=e.project,
            action=e.kind,
            actor="system",
            reason=e.message,
            severity=e.severity,
        )
        for e in events
    ]
    entries.sort(key=lambda e: (e.at, e.type == "decision", e.id), reverse=True)
    total = (session.scalar(select(func.count()).select_from(Decision).where(*decision_filter)) or 0) + (
        session.scalar(select(func.count()).select_from(Event).where(*event_filter)) or 0
    )
    page = entries[offset:window]
    return AuditPage(
        entries=page,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=window if window < total else None,
    )


def open_vulnerabilities(session: Session, name: str) -> list[Vulnerability]:
    """Vulnerabilities the audit job has recorded for the project and not seen withdrawn."""
    return list(
        session.scalars(
            select(Vulnerability)
            .where(Vulnerability.project == name, Vulnerability.resolved_at.is_(None))
            .order_by(Vulnerability.version, Vulnerability.vuln_id)
        )
    )
