"""Re-audit of everything cached: what passed yesterday can turn bad today.

Owners change, releases appear, advisories are published.  A run walks the
cached public projects in batches (memory stays flat however many there
are), refreshes each one's upstream facts with conditional requests at a
polite rate on a few threads, re-runs every detector, and diffs the result
against the findings still open: new ones are added, gone ones resolved,
and both are linked to the run.  The policy is then applied again, by the
actor "audit", so every change it makes is a Decision a reviewer can read.

A run that cannot reach something keeps going and says so: each failure is
recorded by kind (see ``mirror.audit.results``), a vulnerability service
that stops answering is given up after a few failures in a row instead of
costing a timeout per release, and the summary says whether the run was
complete.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import detectors
from detectors.facts import Finding, Severity
from mirror import metrics
from mirror.audit.results import (
    AdvisoryError,
    ServiceFailure,
    INTERNAL_ERROR,
    SERVICE_GIVEN_UP,
    UPSTREAM_ERROR,
    UPSTREAM_UNREACHABLE,
    AuditSummary,
    Progress,
    ProjectResult,
)
from mirror.audit.scheduler import IntervalScheduler
from mirror.audit.settings import AuditSettings
from mirror.audit.sweep import sweep_internal_names
from mirror.config import Settings, SettingsError
from mirror.db.models import AuditChange, AuditRun, FindingRow, Page, PinnedFile, Project, Release, Snapshot
from mirror.screening import policy as policy_mod
from mirror.screening.decisions import decide_project, decide_release
from mirror.screening.events import record_event
from mirror.screening.screen import snapshot_facts
from mirror.upstream.client import NOT_FOUND, NOT_MODIFIED, Fetched
from mirror.upstream.errors import CircuitOpen, UpstreamError, UpstreamUnreachable
from mirror.upstream.project_info import UpstreamInfo, stored_fields

if TYPE_CHECKING:
    from mirror.audit import vulns

log = logging.getLogger("indexguard.audit")

BATCH = 100
OWNERS_REPLACED = "owners replaced"
STATE_STRICTNESS = {"allowed": 0, "quarantined": 2, "denied": 3}


def audit_settings(settings: Settings) -> AuditSettings:
    """The ``[audit]`` table of ``settings``; SettingsError names the bad key."""
    return AuditSettings.from_settings(settings)


class RateLimiter:
    """Spaces calls ``1/rate`` seconds apart across threads, so upstream sees a steady, polite pace."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.monotonic()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self.sleep(at - now)


class ServiceGate:
    """Stops a run asking a vulnerability service that failed ``limit`` times in a row.

    An unreachable service costs a connect timeout per query; a run of
    thousands of releases would spend hours learning nothing.  Any answer
    resets the count; once given up, the service stays given up until the
    next run, and ``first`` keeps the failure that explains why.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.first: ServiceFailure | None = None
        self.given_up = False
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            if not self.given_up:
                self.in_a_row = 0

    def failed(self, failure: ServiceFailure) -> None:
        with self._lock:
            self.in_a_row += 1
            if self.first is None:
                self.first = failure
            if self.in_a_row >= self.limit and not self.given_up:
                self.given_up = True
                log.warning("vulnerability service given up for this run after %d failures in a row: %s",
                            self.in_a_row, failure.kind)


class Auditor:
    """Runs audits against one process's ``Services`` (see ``mirror.container``)."""

    def __init__(self, services: Any, settings: AuditSettings | None = None) -> None:
        self.services = services
        self.settings = settings or audit_settings(services.settings)
        self.limiter = RateLimiter(self.settings.rate_per_second)
        self._vulns: vulns.Services | None = None
        self._gate = ServiceGate(self.settings.vulnerability_max_failures)
        self._reported: set[str] = set()
        self._reported_lock = threading.Lock()

    def vulnerability_services(self) -> vulns.Services:
        """Built per run: the advisory directory may have been updated since the last one."""
        from mirror.audit import vulns  # pip-audit, and pip with it (~15 MiB): loaded when an audit first runs

        try:
            return vulns.configured_services(
                self.settings.vulnerability_service,
                self.settings.advisory_dir,
                timeout=self.services.settings.upstream.timeout,
            )
        except AdvisoryError as exc:
            raise SettingsError("audit.advisory_dir", str(exc)) from None

    # -- a run ---------------------------------------------------------------

    def run(self, *, project: str | None = None, trigger: str = "command", holder: str = "",
            progress: Progress | None = None, sweep: bool = True) -> AuditSummary:
        """Audit every cached public project (or just ``project``) and record the run."""
        self._vulns = self.vulnerability_services()
        self._gate = ServiceGate(self.settings.vulnerability_max_failures)
        self._reported = set()
        clock = self.services.clock
        started = clock()
        with self.services.sessions.begin() as session:
            run = AuditRun(started_at=started, trigger=trigger, holder=holder, details={})
            session.add(run)
            session.flush()
            run_id = run.id
        summary = AuditSummary(run_id=run_id, started_at=started, finished_at=started)
        # 1. Every cached public project: upstream facts, detectors, policy, vulnerabilities.
        total = self.count(project)
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="audit") as pool:
            for batch in self._batches(project):
                for result in pool.map(lambda name: self.audit_project(name, run_id), batch):
                    summary.add(result)
                    if progress is not None:
                        progress(summary.projects, total, result.project, summary.errors)
        # 2. Internal names: has someone claimed one, or a look-alike, on the public index?
        if sweep and project is None:
            for result in sweep_internal_names(self.services, run_id, self.limiter):
                summary.add(result)
                summary.projects -= 1  # internal names are swept, not audited
        # 3. Content: cached files not yet looked at with today's rules (the rules changed).
        if self.services.content is not None and project is None:
            self._rescan_content(summary)
        # 4. The store at rest: every blob re-hashed; a corrupt one is moved aside and fetched again.
        if project is None:
            self._scrub(summary)
        summary.finished_at = clock()
        metrics.AUDIT_DURATION.observe((summary.finished_at - started).total_seconds())
        self._record(run_id, project, summary)
        for failure in summary.failures.values():
            log.info("audit run %d: %s", run_id, failure.line())
        return summary

    def _rescan_content(self, summary: AuditSummary) -> None:
        content = self.services.content
        for item in content.unscanned_stored(self.services.store.has):
            try:
                scan = content.ensure_screened(item)
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the run
                summary.add(ProjectResult(project=item.project, error=f"content scan of {item.filename}: {exc}",
                                          error_kind="content scan failed"))
                summary.projects -= 1  # a file, not a project
                continue
            if scan.action != "allow":
                summary.actions.append(f"{item.project} {item.version}: {scan.action} ({item.filename}, content)")

    def _scrub(self, summary: AuditSummary) -> None:
        report = self.services.store.scrub()
        if not report.corrupt:
            return
        with self.services.sessions.begin() as session:
            for sha256 in report.corrupt:
                record_event(
                    session, severity="critical", kind="blob-corrupt", message=(
                        f"stored blob {sha256} no longer matches its hash; moved aside, "
                        "it is fetched and verified again on the next request"),
                    details={"sha256": sha256}, at=self.services.clock(),
                )
        summary.actions.extend(f"store: corrupt blob {sha256} quarantined" for sha256 in report.corrupt)

    def _record(self, run_id: int, project: str | None, summary: AuditSummary) -> None:
        with self.services.sessions.begin() as session:
            run = session.get(AuditRun, run_id)
            run.finished_at = summary.finished_at
            run.projects = summary.projects
            run.new_findings = summary.new_findings
            run.resolved_findings = summary.resolved_findings
            run.new_critical = summary.new_critical
            run.new_vulnerabilities = summary.new_vulnerabilities
            run.errors = summary.errors
            run.details = {
                "project": project,
                "complete": summary.complete,
                "critical": summary.critical,
                "actions": summary.actions,
                "errors": summary.error_messages,
                "failures": [f.to_dict() for f in summary.failures.values()],
                "unchecked_releases": summary.unchecked_releases,
                "vulnerability_service": self._service_state(),
            }

    def _service_state(self) -> dict[str, Any]:
        """What the run learnt of the vulnerability service, for pages that say "not checked"."""
        first = self._gate.first
        return {
            "name": self.settings.vulnerability_service,
            "given_up": self._gate.given_up,
            "failure": None if first is None else {"kind": first.kind, "message": str(first)},
        }

    def count(self, only: str | None = None) -> int:
        """Cached public projects a run would audit (just ``only`` when given)."""
        with self.services.sessions() as session:
            query = select(func.count()).select_from(Project).where(Project.source == "public")
            if only is not None:
                query = query.where(Project.name == only)
            return int(session.scalar(query) or 0)

    def _batches(self, only: str | None) -> Iterator[list[str]]:
        """Project names in pages of BATCH (keyset pagination: no offset scans, no full list)."""
        last = ""
        while True:
            with self.services.sessions() as session:
                query = select(Project.name).where(Project.source == "public", Project.name > last)
                if only is not None:
                    query = query.where(Project.name == only)
                names = list(session.scalars(query.order_by(Project.name).limit(BATCH)))
            if not names:
                return
            yield names
            last = names[-1]

    # -- one project ----------------------------------------------------------

    def audit_project(self, name: str, run_id: int) -> ProjectResult:
        """Audit one project; a failure is recorded on the result, never raised (one bad project must not stop the run)."""
        result = ProjectResult(project=name)
        try:
            self._audit_project(name, run_id, result)
        except UpstreamError as exc:
            unreachable = isinstance(exc, (UpstreamUnreachable, CircuitOpen))
            result.fail(UPSTREAM_UNREACHABLE if unreachable else UPSTREAM_ERROR, str(exc))
        except Exception as exc:
            kind = f"{INTERNAL_ERROR} ({type(exc).__name__})"
            result.fail(kind, f"{type(exc).__name__}: {exc}")
            # One line per kind and run at WARNING; every traceback at DEBUG.
            log.debug("audit of %s failed", name, exc_info=True)
            if self._first_of_kind(kind):
                log.warning("audit of %s failed: %s: %s (more of this kind are logged at DEBUG)",
                            name, type(exc).__name__, exc)
        return result

    def _first_of_kind(self, kind: str) -> bool:
        with self._reported_lock:
            if kind in self._reported:
                return False
            self._reported.add(kind)
            return True

    def _audit_project(self, name: str, run_id: int, result: ProjectResult) -> None:
        services = self.services
        now = services.clock()
        with services.sessions() as session:
            etag = session.scalar(select_page_etag(name))
        self.limiter.wait()
        fetched = services.upstream.fetch_project(name, etag)
        page = fetched.page if isinstance(fetched, Fetched) else services.pages.upstream_page(name)
        self.limiter.wait()
        facts, _, seen = services.screening.gather(name, page)
        findings = list(detectors.run_all(facts, services.detectors.config))
        if fetched is NOT_FOUND:
            findings.append(Finding(
                "upstream", Severity.HIGH, f"the public index no longer has '{name}' (removed or taken down)",
                target=name, evidence={"checked_at": now.isoformat()},
            ))
        with services.sessions.begin() as session:
            self._diff_findings(session, name, findings, now, run_id, result)
            self._store_snapshot(session, name, facts, seen)
            self._apply_project_policy(session, name, facts, findings, now, result)
            self._lift_matured_holds(session, name, now, result)
        # New releases are registered (and held) while the page is stored, after
        # the snapshot above, so a change of owners holds them.
        if isinstance(fetched, Fetched):
            services.pages.store_fetched(name, fetched)
        decided = bool(result.actions)  # a decision changed what the stored page must show
        if self._vulns and self._check_vulnerabilities(name, now, run_id, result):
            decided = True
        if decided or (fetched is NOT_MODIFIED and self._holds_expired(name, now)):
            services.pages.rebuild(name)
        services.screening.forget(name)
        services.pages.forget(name)
        for title in result.critical:
            services.notify("critical-finding", {"project": name, "finding": {"title": title, "source": "audit"}})

    def _holds_expired(self, name: str, now: datetime) -> bool:
        """A hold someone else set has run out: the unchanged page still needs re-filtering."""
        with self.services.sessions() as session:
            return session.scalars(select(Release.id).where(
                Release.project == name, Release.state == "held", Release.held_until.is_not(None),
                Release.held_until <= now)).first() is not None

    def _diff_findings(self, session: Session, name: str, findings: list[Finding], now: datetime,
                       run_id: int, result: ProjectResult) -> None:
        open_rows = {
            finding_key(r.detector, r.severity, r.target, r.version): r
            for r in session.scalars(select(FindingRow).where(
                FindingRow.project == name, FindingRow.resolved_at.is_(None), FindingRow.version.is_(None)))
        }
        current = {}
        for f in findings:
            current.setdefault(finding_key(f.detector, str(f.severity), f.target, f.release), f)
        for key, finding in current.items():
            if key in open_rows:
                continue
            if finding.release is not None and session.scalars(select(FindingRow.id).where(
                FindingRow.project == name, FindingRow.version == finding.release,
                FindingRow.detector == finding.detector, FindingRow.resolved_at.is_(None),
            )).first() is not None:
                continue
            row = FindingRow(
                project=name, version=finding.release, detector=finding.detector,
                severity=str(finding.severity), title=finding.title, target=finding.target,
                evidence=dict(finding.evidence), found_at=now,
            )
            session.add(row)
            session.flush()
            session.add(AuditChange(run_id=run_id, finding_id=row.id, change="added"))
            result.added.append(row.id)
            if finding.severity >= Severity.CRITICAL:
                result.critical.append(f"{name}: {finding.title}")
                record_event(session, severity="critical", kind=f"finding:{finding.detector}", project=name,
                             message=finding.title, details={**finding.to_dict(), "audit_run": run_id}, at=now)
        for key, row in open_rows.items():
            if key not in current:
                row.resolved_at = now
                session.add(AuditChange(run_id=run_id, finding_id=row.id, change="resolved"))
                result.resolved.append(row.id)

    def _store_snapshot(self, session: Session, name: str, facts: Any, seen: UpstreamInfo | None) -> None:
        """Keep ownership facts (and what upstream says) only when they changed: the table grows with changes, not runs.

        A change is dated to the previous snapshot, the last moment the old
        owners were known to be in charge: anything uploaded since then may
        come from the new hands, even though we only notice now.  What
        upstream says is kept beside them, so the review page shows the
        newest text without asking upstream.
        """
        fresh = snapshot_facts(facts)
        if seen is not None:
            fresh["upstream"] = stored_fields(seen)
        latest = session.scalars(
            select(Snapshot).where(Snapshot.project == name).order_by(Snapshot.taken_at.desc()).limit(1)
        ).first()
        roles_changed = (facts.previous_roles is not None and facts.roles is not None
                         and dict(facts.roles) != dict(facts.previous_roles))
        if roles_changed and latest is not None:
            fresh["ownership_changed_at"] = latest.taken_at.isoformat()
        if latest is None or dict(latest.facts) != fresh:
            session.add(Snapshot(project=name, taken_at=facts.now, facts=fresh))

    def _apply_project_policy(self, session: Session, name: str, facts: Any, findings: list[Finding],
                              now: datetime, result: ProjectResult) -> None:
        row = session.get(Project, name)
        if row is None:
            return
        replaced = owners_replaced(facts.previous_roles, facts.roles)
        if replaced and row.state == "allowed":
            before, after = replaced
            reason = f"{OWNERS_REPLACED}: was {', '.join(before)}, now {', '.join(after)}"
            decide_project(session, project=name, action="review", actor="audit", reason=reason, now=now)
            result.actions.append(f"{name}: quarantined ({reason})")
            self.services.notify("quarantine", {"project": name, "action": "review", "reasons": [reason]})
            return
        outcome = policy_mod.decide(findings, self.services.detectors.policy, project=name)
        wanted = policy_mod.STRICTNESS[outcome.action]
        have = STATE_STRICTNESS.get(row.state, 0)
        automatic = row.decided_by in ("policy", "audit") and row.allow_until is None
        reason = "; ".join(outcome.reasons) if outcome.reasons else "no findings"
        if wanted > have and (automatic or result.added):
            decide_project(session, project=name, action=outcome.action, actor="audit", reason=reason, now=now)
            result.actions.append(f"{name}: {outcome.action} ({reason})")
            self.services.notify("quarantine" if outcome.action == "review" else "deny",
                                 {"project": name, "action": outcome.action, "reasons": list(outcome.reasons)})
        elif outcome.action == "allow" and have > 0 and automatic and not row.reason.startswith(OWNERS_REPLACED):
            decide_project(session, project=name, action="allow", actor="audit",
                           reason=f"findings cleared on re-audit ({reason})", now=now)
            result.actions.append(f"{name}: allowed (findings cleared)")

    def _lift_matured_holds(self, session: Session, name: str, now: datetime, result: ProjectResult) -> None:
        """A cooldown that has passed becomes an explicit allow, so the record says when and why."""
        for release in session.scalars(select(Release).where(
                Release.project == name, Release.state == "held", Release.held_until.is_not(None))):
            if release.held_until <= now and release.decided_by in ("policy", "audit"):
                decide_release(session, project=name, version=release.version, action="allow", actor="audit",
                               reason="hold matured (cooldown over)", now=now)
                result.actions.append(f"{name} {release.version}: hold lifted (cooldown over)")

    def _check_vulnerabilities(self, name: str, now: datetime, run_id: int, result: ProjectResult) -> bool:
        """Query every cached version; True when a release decision changed (the page needs a rebuild).

        A release the services could not answer for keeps its previous
        answer and counts as unchecked; once the gate has given the service
        up, the remaining releases are not asked at all.
        """
        from mirror.audit import vulns  # loaded by vulnerability_services() already: a dictionary lookup

        assert self._vulns is not None
        with self.services.sessions() as session:
            versions = sorted(v for v in session.scalars(
                select(PinnedFile.version).where(PinnedFile.project == name).distinct()) if v)
        changed = False
        for index, version in enumerate(versions):
            if self._gate.given_up:
                first = self._gate.first
                result.unchecked_releases += len(versions) - index
                result.fail(SERVICE_GIVEN_UP, f"{first.kind}: {first}" if first else SERVICE_GIVEN_UP)
                break
            if self.settings.vulnerability_service != "none":
                self.limiter.wait()
            try:
                found = self._vulns.query(name, version)
            except ServiceFailure as exc:
                self._gate.failed(exc)
                result.unchecked_releases += 1
                result.fail(exc.kind, f"{version}: {exc}")
                continue
            self._gate.answered()
            with self.services.sessions.begin() as session:
                out = vulns.store_release_vulnerabilities(
                    session, project=name, version=version, found=found,
                    policy=self.settings.vulnerable_action, now=now,
                )
                for finding_id in out.added:
                    session.add(AuditChange(run_id=run_id, finding_id=finding_id, change="added"))
                for finding_id in out.resolved:
                    session.add(AuditChange(run_id=run_id, finding_id=finding_id, change="resolved"))
            result.added.extend(out.added)
            result.resolved.extend(out.resolved)
            result.critical.extend(f"{name}: {title}" for title in out.critical)
            result.new_vulnerabilities += out.new_vulnerabilities
            if out.action is not None:
                changed = True
                result.actions.append(f"{name} {version}: {out.action} (vulnerability)")
        return changed


def finding_key(detector: str, severity: str, target: str | None, version: str | None) -> tuple:
    """What makes two findings "the same" across audits (titles may reword, counts may move)."""
    return (detector, severity, target or "", version or "")


def owners_replaced(previous: Mapping[str, str] | None, current: Mapping[str, str] | None
                    ) -> tuple[list[str], list[str]] | None:
    """(before, after) when every previous owner or maintainer is gone; None otherwise.

    Someone added beside the old owners is a change; nobody of the old ones
    left is a takeover, the pattern of hijacked and sold projects.
    """
    if not previous or not current:
        return None
    if set(previous) & set(current):
        return None
    return sorted(previous), sorted(current)



def select_page_etag(name: str) -> Any:
    return select(Page.upstream_etag).where(Page.project == name)


def interval(settings: AuditSettings) -> timedelta:
    return timedelta(hours=settings.interval_hours)


def audit_scheduler(
    services: Any, settings: AuditSettings | None = None, *, run: Callable[[str], object] | None = None
) -> IntervalScheduler:
    """The background schedule for this server: one audit per interval across all replicas.

    ``run`` runs one scheduled audit given the lease holder's name (``serve``:
    ``mirror.audit.process``, a child process); by default it runs on the scheduler's thread.
    """
    settings = settings or audit_settings(services.settings)
    auditor = Auditor(services, settings)
    scheduler = IntervalScheduler(
        name="audit",
        sessions=services.sessions,
        clock=services.clock,
        interval=interval(settings),
        job=lambda: None,
        poll_seconds=settings.poll_seconds,
    )
    if run is None:
        scheduler.job = lambda: auditor.run(trigger="scheduled", holder=scheduler.holder)
    else:
        scheduler.job = lambda: run(scheduler.holder)
    return scheduler
