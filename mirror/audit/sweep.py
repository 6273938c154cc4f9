"""Dependency-confusion sweep: has someone put one of our internal names on the public index?

The mirror never asks the public index for an internal name when serving
it, so nothing at the door notices the day an attacker registers it.  The
sweep looks once per audit - without naming any internal name upstream:
asking for ``/simple/acme-secret/`` every day would tell whoever runs or
watches the index exactly which names we use internally.

What is sent upstream: one request for the index's full project list (the
root ``/simple/`` page, the same for every caller and every run).  The
internal names, the internal index and the comparison stay here: the names
stream through ``detectors.confusion.sweep`` (the detector library's tested,
benchmarked sweep), which reports each public name that is, reads as,
matches a pattern of, or nearly is an internal name.  Every such name is a
critical finding; a near name the mirror has cached as a public project is
also denied.  When the list cannot be had, the look-alike check runs over
the names the mirror has cached and the run records an error: the exact
claims cannot be checked without the list.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors.confusion import sweep
from detectors.facts import InternalNames
from mirror.audit.results import UPSTREAM_ERROR, ProjectResult
from mirror.db.models import AuditChange, FindingRow, Page, Project
from mirror.screening.decisions import decide_project
from mirror.screening.events import record_event
from mirror.upstream.errors import UpstreamError

log = logging.getLogger("indexguard.sweep")

BATCH = 500


def sweep_internal_names(services: Any, run_id: int, limiter: Any) -> Iterator[ProjectResult]:
    """One ProjectResult per public name that gained a critical finding, plus one if the list failed."""
    internal = InternalNames.build(sorted(services.internal.all_names()), services.internal.settings.patterns)
    if not internal.names and not internal.patterns:
        return
    now = services.clock()
    limiter.wait()
    try:
        public: Iterable[str] = services.upstream.fetch_project_list()
    except UpstreamError as exc:
        log.warning("sweep: public project list unavailable, checking cached names only: %s", exc)
        failed = ProjectResult(project="(sweep)")
        failed.fail(UPSTREAM_ERROR, f"sweep: public project list unavailable ({exc}); "
                    "exact claims on internal names were not checked")
        yield failed
        public = cached_public_names(services)
    for name, target, why in sweep(public, internal, services.detectors.config.typosquat):
        result = ProjectResult(project=name)
        if why == "name":
            title = f"internal name '{name}' now exists on the public index"
            evidence = {"internal": target, "public": name, "match": why}
            _record(services, result, run_id, now, project=name, target=target, title=title, evidence=evidence)
        else:
            relation = {"lookalike": "reads as it", "pattern": "matches the pattern"}.get(why, why)
            title = f"public project '{name}' is a look-alike of internal name '{target}' ({relation})"
            evidence = {"internal": target, "public": name, "relation": why}
            _record(services, result, run_id, now, project=name, target=target, title=title, evidence=evidence,
                    deny=True)
        if result.added:
            yield result


def cached_public_names(services: Any) -> Iterator[str]:
    """The public names the mirror has pages for, in batches (the fallback when the list fails)."""
    last = ""
    while True:
        with services.sessions() as session:
            batch = list(session.scalars(
                select(Page.project).where(Page.project > last).order_by(Page.project).limit(BATCH)))
        if not batch:
            return
        yield from batch
        last = batch[-1]


def _record(services: Any, result: ProjectResult, run_id: int, now: datetime, *, project: str, target: str,
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
        denied = deny and cached is not None and cached.source == "public" and cached.state != "denied"
        if denied:
            decide_project(session, project=project, action="deny", actor="audit", reason=title, now=now)
            result.actions.append(f"{project}: deny ({title})")
    if denied:
        services.after_decision(project)
    services.notify("critical-finding", {"project": project, "finding": {
        "detector": "confusion", "severity": "critical", "title": title, "target": target, "evidence": evidence}})


def _open(session: Session, project: str, target: str) -> bool:
    return session.scalars(select(FindingRow.id).where(
        FindingRow.project == project, FindingRow.detector == "confusion", FindingRow.target == target,
        FindingRow.resolved_at.is_(None))).first() is not None
