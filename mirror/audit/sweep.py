"""Dependency-confusion sweep: has someone put one of our internal names on the public index?

The mirror never asks the public index for an internal name when serving
it, so nothing at the door notices the day an attacker registers it.  The
sweep asks on purpose, once per audit: the exact name (a claim on the name
itself) and the public names the mirror knows that sit near an internal
name (a look-alike waiting for a typo).  Either is critical.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors.corpus import NameIndex, Project as Protected
from detectors.similarity import NameForms, relate
from mirror.db.models import AuditChange, FindingRow, Page, Project
from mirror.screening.decisions import decide_project
from mirror.screening.events import record_event
from mirror.upstream.client import Fetched, UpstreamError

log = logging.getLogger("indexguard.sweep")

BATCH = 500


def sweep_internal_names(services: Any, run_id: int, limiter: Any) -> Iterator[Any]:
    """One ProjectResult per internal name that gained a critical finding or failed."""
    from mirror.audit.runner import ProjectResult

    names = sorted(services.internal.all_names())
    if not names:
        return
    now = services.clock()
    for name in names:
        result = ProjectResult(project=name)
        limiter.wait()
        try:
            answer = services.upstream.fetch_project(name)
        except UpstreamError as exc:
            result.error = f"sweep: {exc}"
            yield result
            continue
        if isinstance(answer, Fetched):
            title = f"internal name '{name}' now exists on the public index"
            evidence = {"internal": name, "public": name, "files": len(answer.page.files)}
            _record(services, result, run_id, now, project=name, target=name, title=title, evidence=evidence)
        if result.added or result.error:
            yield result
    index = internal_index(services, names)
    for public, internal, relation in near_names(services, index):
        result = ProjectResult(project=public)
        title = f"public project '{public}' is a look-alike of internal name '{internal}' ({relation})"
        evidence = {"internal": internal, "public": public, "relation": relation}
        _record(services, result, run_id, now, project=public, target=internal, title=title, evidence=evidence,
                deny=True)
        if result.added:
            yield result


def internal_index(services: Any, names: list[str]) -> NameIndex:
    """The detectors' reverse index of internal names (built here if the setup has none)."""
    built = services._internal_names() if hasattr(services, "_internal_names") else None
    index = getattr(built, "index", None)
    if isinstance(index, NameIndex):
        return index
    return NameIndex(Protected(name=n, kind="internal") for n in names)


def near_names(services: Any, index: NameIndex) -> Iterator[tuple[str, str, str]]:
    """(public name, internal name, how they relate) for public names the mirror has seen."""
    last = ""
    while True:
        with services.sessions() as session:
            batch = list(session.scalars(
                select(Page.project).where(Page.project > last).order_by(Page.project).limit(BATCH)))
        if not batch:
            return
        for public in batch:
            if services.internal.is_internal(public):
                continue
            forms = NameForms.of(public)
            for protected, protected_forms in index.neighbours(public):
                if protected.name == forms.canonical:
                    continue
                relation = relate(forms, protected_forms)
                if relation is not None:
                    yield public, protected.name, str(getattr(relation, "kind", relation))
                    break
        last = batch[-1]


def _record(services: Any, result: Any, run_id: int, now: datetime, *, project: str, target: str,
            title: str, evidence: dict[str, Any], deny: bool = False) -> None:
    """A critical confusion finding (once: an open one is not repeated), an event and a notification."""
    with services.sessions.begin() as session:
        if _open(session, project, target):
            return
        row = FindingRow(project=project, version=None, detector="confusion", severity="critical",
                         title=title, target=target, evidence=evidence, found_at=now)
        session.add(row)
        session.flush()
        session.add(AuditChange(run_id=run_id, finding_id=row.id, change="added"))
        record_event(session, severity="critical", kind="finding:confusion", project=project, message=title,
                     details={**evidence, "audit_run": run_id}, at=now)
        result.added.append(row.id)
        result.critical.append(title)
        cached = session.get(Project, project)
        if deny and cached is not None and cached.source == "public" and cached.state != "denied":
            decide_project(session, project=project, action="deny", actor="audit", reason=title, now=now)
            result.actions.append(f"{project}: deny ({title})")
    if deny:
        services.after_decision(project)
    services.notify("critical-finding", {"project": project, "finding": {
        "detector": "confusion", "severity": "critical", "title": title, "target": target, "evidence": evidence}})


def _open(session: Session, project: str, target: str) -> bool:
    return session.scalars(select(FindingRow.id).where(
        FindingRow.project == project, FindingRow.detector == "confusion", FindingRow.target == target,
        FindingRow.resolved_at.is_(None))).first() is not None
