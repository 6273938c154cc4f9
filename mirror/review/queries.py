"""Read-only views of the screening record, shared by the API, the pages and the CLI.

Each function takes an open session and the current time and returns the
API's own models, so that what a reviewer sees in the browser and what a
script gets from the API can never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.utils import canonicalize_name
from sqlalchemy import case, desc, false, func, select
from sqlalchemy.orm import Session

from mirror.db.models import (
    AuditRun,
    Decision,
    Event,
    FindingRow,
    PinnedFile,
    Project,
    RefusedClient,
    Release,
    Snapshot,
    Vulnerability,
)
from mirror.review.refusals import OVERFLOW
from mirror.screening.decisions import effective_project_state, release_blocked
from mirror.states import SEVERITY_WORDS
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
    RefusedClientOut,
    ReleaseOut,
)

SEVERITIES = SEVERITY_WORDS
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
TOP_FINDINGS = 3
# The project page and the API's project history list this many of the clients refused most recently.
RECENT_REFUSED = 5


def severity_rank(severity: str) -> int:
    """Sort key: critical first, unknown words last."""
    return _RANK.get(severity, len(SEVERITIES))


def project_out(
    row: Project, now: datetime, findings: list[FindingRow], refused: tuple[int, bool] = (0, False)
) -> ProjectOut:
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
        clients_refused=refused[0],
        clients_refused_more=refused[1],
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
    names = [r.name for r in rows]
    findings = _findings_by_project(session, names)
    refused = clients_refused(session, names)
    return ProjectList(
        items=[project_out(r, now, findings[r.name], refused[r.name]) for r in rows],
        total=total, limit=limit, offset=offset,
    )


def normal_query(query: str) -> str:
    """A search string in the names' normal form (PEP 503: lower case, runs of -_. as -)."""
    return canonicalize_name(query.strip())


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page narrows to; an empty filter shows everything."""

    detector: str | None = None
    severity: str | None = None
    min_age: timedelta | None = None

    @property
    def active(self) -> bool:
        return bool(self.detector or self.severity or self.min_age)


def _finding_filter(queue_filter: QueueFilter) -> list[Any]:
    where: list[Any] = [FindingRow.resolved_at.is_(None)]
    if queue_filter.detector:
        where.append(FindingRow.detector == queue_filter.detector)
    if queue_filter.severity:
        where.append(FindingRow.severity == queue_filter.severity)
    return where


def review_queue(session: Session, now: datetime, *, limit: int = 200, only: QueueFilter | None = None) -> Queue:
    """What waits for a person: quarantined projects and held releases, oldest first.

    ``counts`` are always the whole queue; ``only`` narrows the lists (by an
    open finding's detector or severity, and by how long it has waited).
    """
    only = only or QueueFilter()
    quarantined = select(Project).where(Project.state == "quarantined")
    project_count = session.scalar(select(func.count()).select_from(quarantined.subquery())) or 0
    if only.detector or only.severity:
        quarantined = quarantined.where(
            Project.name.in_(select(FindingRow.project).where(*_finding_filter(only)))
        )
    if only.min_age:
        quarantined = quarantined.where(Project.decided_at <= now - only.min_age)
    rows = list(session.scalars(quarantined.order_by(Project.decided_at, Project.name).limit(limit))) if limit else []
    findings = _findings_by_project(session, [r.name for r in rows])
    refused = clients_refused(session, [r.name for r in rows])
    held_query = select(Release).where(Release.state == "held")
    held = [r for r in session.scalars(held_query.order_by(Release.decided_at, Release.id)) if release_blocked(r, now)]
    total_held = len(held)
    if only.min_age:
        held = [r for r in held if r.decided_at <= now - only.min_age]
    if (only.detector or only.severity) and held:
        flagged = {
            (project, version)
            for project, version in session.execute(
                select(FindingRow.project, FindingRow.version).where(
                    FindingRow.version.is_not(None), *_finding_filter(only)
                )
            )
        }
        held = [r for r in held if (r.project, r.version) in flagged]
    return Queue(
        counts=QueueCounts(projects=project_count, releases=total_held),
        projects=[project_out(r, now, findings[r.name], refused[r.name]) for r in rows],
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


def queue_detectors(session: Session) -> list[str]:
    """Detectors with an open finding, for the queue's filter choices."""
    return sorted(
        session.scalars(select(FindingRow.detector).where(FindingRow.resolved_at.is_(None)).distinct())
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
        project=project_out(row, now, findings, clients_refused(session, [name])[name]),
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
        refused_clients=recent_refused(session, name),
    )


# The decision almost every screened project gets: the policy let it through.
ROUTINE_ACTION = "allow"
ROUTINE_REASON = "no findings"


@dataclass(frozen=True)
class AuditFilter:
    """Narrowing of the audit log; every field optional, combined with AND."""

    hide_routine: bool = False
    action: str | None = None
    actor: str | None = None
    detector: str | None = None


def audit_log(
    session: Session,
    *,
    limit: int = 50,
    offset: int = 0,
    project: str | None = None,
    only: AuditFilter | None = None,
) -> AuditPage:
    """Decisions and critical events, newest first.

    The two tables are merged by time; each contributes at most
    ``offset + limit`` rows, which is what the merge can need.  ``only``
    narrows both: ``hide_routine`` drops the policy's "allow / no findings",
    ``action`` matches a decision's action or an event's kind, ``actor`` a
    decision's actor ('system' keeps events), ``detector`` decisions on
    projects with a finding of that detector and that detector's events.
    """
    only = only or AuditFilter()
    decision_filter: list[Any] = [Decision.project == project] if project else []
    event_filter: list[Any] = [Event.severity == "critical"] + ([Event.project == project] if project else [])
    if only.hide_routine:
        decision_filter.append(~((Decision.action == ROUTINE_ACTION) & (Decision.reason == ROUTINE_REASON)))
    if only.action:
        decision_filter.append(Decision.action == only.action)
        event_filter.append(Event.kind == only.action)
    if only.actor:
        decision_filter.append(Decision.actor == only.actor)
        if only.actor != "system":
            event_filter.append(false())
    if only.detector:
        decision_filter.append(
            Decision.project.in_(select(FindingRow.project).where(FindingRow.detector == only.detector))
        )
        event_filter.append(Event.kind == f"finding:{only.detector}")
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


def audit_choices(session: Session) -> dict[str, list[str]]:
    """The values the audit log's filters offer: actions, actors and detectors on record."""
    return {
        "actions": sorted(set(session.scalars(select(Decision.action).distinct()))),
        "actors": sorted(set(session.scalars(select(Decision.actor).distinct())) | {"system"}),
        "detectors": sorted(set(session.scalars(select(FindingRow.detector).distinct()))),
    }


@dataclass(frozen=True)
class Day:
    """One day of the queue chart: decisions made that day, and the queue at its end."""

    start: datetime
    allowed: int
    blocked: int
    queued: int


_STATE_ACTIONS = ("allow", "review", "deny", "hold")


def activity(session: Session, now: datetime, *, days: int = 30) -> list[Day]:
    """Decisions per day and the queue size at the end of each of the last ``days`` days.

    The queue size is replayed from the decision log: the latest
    state-changing decision of a project says whether it is quarantined (a
    break-glass allow leaves it in the queue, as the queue page lists it),
    the latest of a release whether it is held and until when.  The state at
    the window's start comes from one row per project and release, then the
    window's own decisions are replayed, so the cost grows with the number of
    projects and the window, not with the whole history.
    """
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=days)
    latest = (
        select(func.max(Decision.id))
        .where(Decision.at < start, Decision.action.in_(_STATE_ACTIONS))
        .group_by(Decision.project, Decision.version)
    )
    columns = (Decision.project, Decision.version, Decision.action, Decision.at, Decision.expires_at)
    before = session.execute(select(*columns).where(Decision.id.in_(latest)))
    during = session.execute(
        select(*columns).where(Decision.at >= start, Decision.at < end).order_by(Decision.at, Decision.id)
    )
    projects: dict[str, bool] = {}
    releases: dict[tuple[str, str], datetime | bool] = {}

    def apply(project: str, version: str | None, action: str, expires_at: datetime | None) -> None:
        if action not in _STATE_ACTIONS:
            return
        if version is None:
            projects[project] = action == "review"
        else:
            releases[(project, version)] = (expires_at or True) if action == "hold" else False

    for project, version, action, _, expires_at in before:
        apply(project, version, action, expires_at)
    result: list[Day] = []
    day_start = start
    allowed = blocked = 0

    def close(until: datetime) -> None:
        nonlocal day_start, allowed, blocked
        while day_start + timedelta(days=1) <= until and day_start < end:
            boundary = day_start + timedelta(days=1)
            held = sum(
                1 for value in releases.values()
                if value is True or (isinstance(value, datetime) and value > boundary)
            )
            result.append(Day(day_start, allowed, blocked, sum(projects.values()) + held))
            allowed = blocked = 0
            day_start = boundary

    for project, version, action, at, expires_at in during:
        close(at)
        apply(project, version, action, expires_at)
        if action in ("allow", "break-glass"):
            allowed += 1
        elif action in ("review", "deny", "hold"):
            blocked += 1
    close(end)
    return result


def clients_refused(session: Session, names: list[str]) -> dict[str, tuple[int, bool]]:
    """Per project: how many distinct clients were refused it, and whether more were than counted.

    Counts ``refused_clients`` rows, which every refused request feeds
    (``mirror.review.refusals``), not only the one that triggered screening;
    the overflow row stands for the clients past the per-project cap.
    """
    counts = {name: (0, False) for name in names}
    if names:
        overflow = case((RefusedClient.client == OVERFLOW, 1), else_=0)
        for project, rows, more in session.execute(
            select(RefusedClient.project, func.count(), func.max(overflow))
            .where(RefusedClient.project.in_(names))
            .group_by(RefusedClient.project)
        ):
            counts[project] = (int(rows) - int(more or 0), bool(more))
    return counts


def recent_refused(session: Session, name: str, limit: int = RECENT_REFUSED) -> list[RefusedClientOut]:
    """The clients refused ``name`` most recently, newest first."""
    rows = session.scalars(
        select(RefusedClient)
        .where(RefusedClient.project == name)
        .order_by(desc(RefusedClient.last_seen), desc(RefusedClient.id))
        .limit(limit)
    )
    return [RefusedClientOut.model_validate(row) for row in rows]


@dataclass(frozen=True)
class VulnerabilityCheck:
    """Whether the audit's vulnerability lookup covered a project, and if not, why."""

    checked: bool
    at: datetime | None = None
    why: str = ""


VULN_FAILURE = "vulnerability service failed"


def vulnerability_check(session: Session, name: str) -> VulnerabilityCheck:
    """The last finished audit run's word on ``name``: checked, or not checked and why.

    The audit keeps a bounded sample of error lines ("NAME: vulnerability
    service failed for V: ..."); when the sample was cut short and already
    shows the service failing, a project not in it may have failed too, so
    it is reported as not known to be checked rather than as clean.
    """
    run = session.scalars(
        select(AuditRun).where(AuditRun.finished_at.is_not(None)).order_by(desc(AuditRun.started_at)).limit(1)
    ).first()
    if run is None:
        return VulnerabilityCheck(False, None, "no audit has run yet")
    errors = [e for e in (run.details or {}).get("errors", []) if isinstance(e, str)]
    failures = [e for e in errors if VULN_FAILURE in e]
    mine = [e for e in failures if e.startswith(f"{name}: ")]
    if mine:
        return VulnerabilityCheck(False, run.started_at, "service unreachable")
    if failures and run.errors > len(errors):
        return VulnerabilityCheck(False, run.started_at, "service failing; this project may not have been checked")
    return VulnerabilityCheck(True, run.finished_at)


def internal_files(session: Session, name: str, prefix: str) -> list[PinnedFile]:
    """The project's files from internal sources (uploads, the directory), newest first."""
    return list(
        session.scalars(
            select(PinnedFile)
            .where(PinnedFile.project == name, PinnedFile.upstream_url.startswith(prefix))
            .order_by(desc(PinnedFile.first_seen), PinnedFile.filename)
        )
    )


STORED_UPSTREAM_SCAN = 50


def stored_upstream(session: Session, name: str) -> tuple[dict[str, Any], datetime] | None:
    """The newest snapshot facts that kept upstream's metadata (an ``upstream`` entry), and when.

    Looks back over the newest ``STORED_UPSTREAM_SCAN`` snapshots: a later
    snapshot that only re-recorded ownership (an audit's) must not hide what
    screening saw.
    """
    rows = session.execute(
        select(Snapshot.facts, Snapshot.taken_at)
        .where(Snapshot.project == name)
        .order_by(desc(Snapshot.taken_at), desc(Snapshot.id))
        .limit(STORED_UPSTREAM_SCAN)
    )
    for facts, taken_at in rows:
        if isinstance(facts, dict) and isinstance(facts.get("upstream"), dict):
            return facts, taken_at
    return None


def internal_projects(session: Session, prefix: str, *, query: str = "", limit: int = 50) -> list[str]:
    """Names with files from internal sources, never screened (so not in ``list_projects``)."""
    where = [PinnedFile.upstream_url.startswith(prefix), PinnedFile.project.not_in(select(Project.name))]
    if query:
        where.append(PinnedFile.project.like(f"%{_escape_like(normal_query(query))}%", escape="\\"))
    return list(
        session.scalars(select(PinnedFile.project).where(*where).distinct().order_by(PinnedFile.project).limit(limit))
    )
