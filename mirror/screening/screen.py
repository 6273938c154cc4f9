"""Screening at the door: facts -> detectors -> policy -> a stored decision.

A project the mirror has never seen is screened before a single byte of it
is served.  The decision is stored with its findings, the facts they came
from and the request that triggered it.  Releases are screened as they
appear: a held release is left off the page and its files are refused.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from datetime import datetime, timedelta
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from packaging.utils import canonicalize_version
from sqlalchemy import desc, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

import detectors
from detectors.facts import DownloadStats, Finding, InternalNames, ProjectFacts, ReleaseFacts, Severity
from mirror import metrics
from mirror.screening import policy as policy_mod
from mirror.clock import Clock, parse_utc
from mirror.db.locks import cross_process_lock
from mirror.db.models import FindingRow, Project, Release, Snapshot
from mirror.screening.decisions import decide_project, decide_release, find_release, release_blocked
from mirror.screening.events import record_event
from mirror.screening.target_metadata import TargetMetadata, resembled_targets
from mirror.simple.model import ProjectPage
from mirror.states import ALLOWED, HELD, POLICY_ACTOR, PROJECT_STATE_OF_ACTION
from mirror.upstream.client import UpstreamClient
from mirror.upstream.errors import UpstreamError
from mirror.upstream.project_info import UpstreamInfo, extract, ownership_roles, project_metadata, stored_fields

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0
# The findings the screening itself makes about facts it could not get.
FACTS_DETECTOR = "facts"
# How a decision taken on incomplete facts begins its reason: the mark that
# makes it provisional (screened again after ``policy.rescreen_incomplete``).
INCOMPLETE_PREFIX = "facts incomplete"
# Seconds the project JSON fetched for a screening is reused for the release
# holds of the page built right after it (one upstream request, not two).
JSON_REUSE_SECONDS = 60.0


Notifier = Callable[[str, dict[str, Any]], None]


class Screening:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        upstream: UpstreamClient,
        clock: Clock,
        internal_names: Callable[[], InternalNames],
        detector_config: Any,
        policy: Any,
        corpus: Callable[[], Any],
        downloads: Callable[[str], DownloadStats | None] = lambda name: None,
        notify: Notifier = lambda kind, payload: None,
        monotonic: Callable[[], float] = time.monotonic,
        prefetch_workers: int = 16,
        resembled: Mapping[str, Any] | None = None,
    ) -> None:
        self.sessions = sessions
        self.upstream = upstream
        self.clock = clock
        self.internal_names = internal_names
        self.detector_config = detector_config
        self.policy = policy
        self.corpus = corpus
        self.downloads = downloads
        self.notify = notify
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, Project | None]] = {}
        self._json: dict[str, tuple[float, bytes | None]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # The project JSON of a never-seen project is fetched while its page is:
        # neither depends on the other, and the cold path waits for both.
        self._prefetch = ThreadPoolExecutor(max_workers=prefetch_workers, thread_name_prefix="project-json")
        # The project JSON of the projects a look-alike name resembles (detectors.impersonation).
        limits = resembled or {}
        self.targets = TargetMetadata(self.upstream.fetch_project_json, self._prefetch.submit, monotonic, **limits)

    def close(self) -> None:
        self._prefetch.shutdown(wait=False, cancel_futures=True)

    # -- the door --------------------------------------------------------------

    def prefetch(self, project: str) -> Future[dict[str, Any] | None]:
        """Start fetching ``project``'s JSON now, for a ``screen`` that will follow its page fetch."""
        return self._prefetch.submit(self.upstream.fetch_project_json, project)

    def screen(
        self,
        project: str,
        page: ProjectPage,
        request: Mapping[str, Any],
        project_json: Future[dict[str, Any] | None] | None = None,
    ) -> None:
        """Screen a never-seen project whose upstream page is ``page``.

        ``project_json``: the document ``prefetch`` started fetching; fetched
        now when not given.  Also takes a provisional decision again: one
        taken while the upstream JSON API failed, once
        ``policy.rescreen_incomplete`` passed.
        """
        with self._lock_for(project), cross_process_lock(self.sessions, project):
            self._cache.pop(project, None)  # another process may have decided meanwhile
            if self.project_row(project) is not None:
                return  # decided meanwhile, here or in another process
            # The row project_row just read: none at all, not a provisional decision due again.
            never_decided = self._cache[project][1] is None
            on_page = never_decided and project_json is not None and self._decides_on_page(project, page, project_json)
            facts, gaps, seen = self.gather(project, page, project_json, with_json=not on_page)
            findings = detectors.run_all(facts, self.detector_config)
            findings += facts_findings(facts, gaps, _versions_of(page) if page else [], self.policy.rescreen_incomplete)
            findings.sort(key=lambda f: (-f.severity, f.detector, f.title))
            outcome = policy_mod.decide(findings, self.policy, project=project)
            snapshot = self._store_first_decision(project, facts, findings, outcome, request, gaps, seen)
            self._cache.pop(project, None)
        if on_page and snapshot is not None:  # outside the locks: a document already here is recorded on this thread
            project_json.add_done_callback(functools.partial(self._record_owners, facts, *snapshot))

    def _decides_on_page(self, project: str, page: ProjectPage, project_json: Future[dict[str, Any] | None]) -> bool:
        """Whether the first decision may be taken on the page while the project JSON is still on its way.

        On first sight the project JSON changes the verdict only through a
        name that resembles another project (the impersonation detector
        compares their summaries) and through upload times a page without
        PEP 700 times lacks.  The owners it lists are the baseline of later
        comparisons, never a finding the first time.  Where neither applies,
        waiting for it only delays the client by an upstream round trip, so
        the decision is taken and the owners are recorded when the document
        arrives (``_record_owners``).
        """
        if project_json.done() or not page.files or any(f.upload_time is None for f in page.files):
            return False
        by_name = ProjectFacts(name=project, now=self.clock(), internal=self.internal_names(), corpus=self.corpus())
        return not detectors.run_name_detectors(by_name, self.detector_config)

    def _record_owners(
        self, facts: ProjectFacts, snapshot_id: int, kept: dict[str, Any], project_json: Future[dict[str, Any] | None]
    ) -> None:
        """Complete the snapshot (``snapshot_id``, holding ``kept``) of a project decided on its page.

        Runs on the thread that fetched the project JSON, once it arrived.
        When the fetch failed, the snapshot stays without owners and the
        next audit records them.
        """
        project = facts.name
        if project_json.cancelled():
            return
        try:
            data = project_json.result()
        except UpstreamError as exc:
            log.warning("project JSON unavailable for %s: %s; its owners are recorded at the next audit", project, exc)
            return
        self._remember_json(project, data)
        owners = snapshot_facts(replace(facts, roles=ownership_roles(data), emails=_emails(data)))
        if data is not None:
            owners["upstream"] = stored_fields(extract(data))
        try:
            with self.sessions.begin() as session:
                session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(facts={**kept, **owners}))
        except Exception:  # a callback's exception would only be printed by the executor
            log.exception("could not record the owners of %s", project)

    def forget(self, project: str) -> None:
        self._cache.pop(project, None)

    # -- facts -----------------------------------------------------------------

    def _with_targets(self, facts: ProjectFacts, gaps: list[str]) -> ProjectFacts:
        """``facts`` with the metadata of the projects the name resembles; what failed joins ``gaps``.

        Asked only when the name detectors found a resemblance and the
        candidate's own metadata is known (there is nothing to compare otherwise).
        """
        if facts.metadata is None:
            return facts
        names = resembled_targets(detectors.run_name_detectors(facts, self.detector_config), facts.internal)
        if not names:
            return facts
        found, failed = self.targets.lookup(names)
        gaps += failed
        return replace(facts, target_metadata=found)

    def gather(
        self,
        project: str,
        page: ProjectPage | None,
        project_json: Future[dict[str, Any] | None] | None = None,
        *,
        with_json: bool = True,
    ) -> tuple[ProjectFacts, list[str], UpstreamInfo | None]:
        """Upstream facts, what could not be fetched (empty when nothing failed), and what upstream says.

        A project JSON API that answers "no such document" is an upstream
        without one (an HTML-only index), not a gap; one that fails is a gap.
        What upstream says (summary, authors, URLs) is None without a document;
        it is kept in the snapshot so the review page need not ask again.
        The projects the name resembles are asked too (``_with_targets``), so
        a re-audit compares with them as the first screening did.  Without
        ``with_json`` the document is not waited for (``_decides_on_page``).
        """
        now = self.clock()
        data: dict[str, Any] | None = None
        gaps: list[str] = []
        if with_json:
            try:
                data = project_json.result() if project_json is not None else self.upstream.fetch_project_json(project)
            except UpstreamError as exc:
                log.warning("project JSON unavailable for %s: %s", project, exc)
                gaps.append(f"the upstream project JSON was unavailable ({exc})")
            else:
                self._remember_json(project, data)
        release_uploads = release_upload_times(page, data)
        previous = self._latest_snapshot(project)
        roles = ownership_roles(data)
        emails = _emails(data)
        facts = ProjectFacts(
            name=project,
            now=now,
            internal=self.internal_names(),
            corpus=self.corpus(),
            exists_upstream=page is not None or data is not None,
            first_upload=min(release_uploads.values()) if release_uploads else None,
            release_uploads=release_uploads,
            roles=roles,
            previous_roles=previous.get("roles") if previous else None,
            emails=emails,
            previous_emails=frozenset(previous["emails"]) if previous and previous.get("emails") is not None else None,
            ownership_changed_at=parse_utc(previous.get("ownership_changed_at")) if previous else None,
            downloads=self.downloads(project),
            metadata=project_metadata(data),
        )
        return self._with_targets(facts, gaps), gaps, (extract(data) if data is not None else None)

    # -- releases ----------------------------------------------------------------

    def register_releases(self, session: Session, project: str, page: ProjectPage) -> set[str]:
        """Register releases seen for the first time and return those to hide now.

        Called while a page is built.  Before the project's first decision
        there is nothing to register against; the page is rebuilt right after.
        A release the policy held only because nobody said when it was
        uploaded is decided again once its upload time becomes known.
        """
        if session.get(Project, project) is None:
            return set()
        now = self.clock()
        known = {
            canonicalize_version(r.version): r
            for r in session.scalars(select(Release).where(Release.project == project))
        }
        uploads = release_upload_times(page, None)
        new = [v for v in _versions_of(page) if canonicalize_version(v) not in known]
        undated = [r.version for r in known.values() if _held_as_undated(r) and release_blocked(r, now)]
        if any(v not in uploads for v in new + undated):
            # The page (HTML, or JSON without PEP 700 times) does not say when
            # these were uploaded: ask the project JSON before holding them as new.
            uploads = release_upload_times(page, self._project_json(project))
        dated = {canonicalize_version(v): t for v, t in uploads.items()}
        ownership_changed_at = None
        snapshot = self._latest_snapshot(project, session)
        if snapshot:
            ownership_changed_at = parse_utc(snapshot.get("ownership_changed_at"))
        for version in undated:
            uploaded = dated.get(canonicalize_version(version))
            if uploaded is not None:
                self._redecide_dated(session, known[canonicalize_version(version)], uploaded, now, ownership_changed_at)
        allowed: list[dict[str, Any]] = []
        for version in new:
            facts = ReleaseFacts(
                project=project,
                version=version,
                uploaded_at=dated.get(canonicalize_version(version)),
                now=now,
                ownership_changed_at=ownership_changed_at,
            )
            findings = detectors.run_release_detectors(facts, self.detector_config)
            if facts.uploaded_at is None:
                findings.append(unknown_upload_finding(version, now))
            action, held_until, reason = policy_mod.decide_release(findings, self.policy, facts)
            if action == "allow":
                values = {
                    "project": project, "version": version, "state": ALLOWED, "reason": "",
                    "upload_time": facts.uploaded_at, "decided_by": POLICY_ACTOR, "decided_at": now,
                }
                allowed.append(values)
                known[canonicalize_version(version)] = Release(**values)  # written below, with the others
            else:
                known[canonicalize_version(version)] = self._hold_release(
                    session, project, version, facts.uploaded_at, action, held_until, reason, findings, now
                )
        if allowed:  # one statement for all: a big project has hundreds of releases
            session.execute(insert(Release), allowed)
        return {r.version for r in known.values() if release_blocked(r, now)}

    def _redecide_dated(
        self, session: Session, row: Release, uploaded: datetime, now: datetime, ownership_changed_at: datetime | None
    ) -> None:
        """Decide a release again now that its upload time is known (cooldown or cutoff from that time)."""
        facts = ReleaseFacts(
            project=row.project, version=row.version, uploaded_at=uploaded, now=now,
            ownership_changed_at=ownership_changed_at,
        )
        findings = detectors.run_release_detectors(facts, self.detector_config)
        action, held_until, reason = policy_mod.decide_release(findings, self.policy, facts)
        decide_release(
            session, project=row.project, version=row.version, action=action, actor="policy",
            reason=reason or f"upload time now known ({uploaded.isoformat()})", now=now, held_until=held_until,
        )
        row.upload_time = uploaded

    def release_state(self, project: str, version: str | None) -> Release | None:
        if version is None:
            return None
        with self.sessions() as session:
            return find_release(session, project, version)

    def project_row(self, project: str) -> Project | None:
        """The stored decision, or None when the project is (again) to be screened.

        A provisional decision (taken while upstream facts were missing)
        counts as none once ``policy.rescreen_incomplete`` has passed, so the
        next request screens the project again; until then it stands.
        """
        cached = self._cache.get(project)
        now = self.monotonic()
        if cached is not None and now - cached[0] < RECHECK_SECONDS:
            row = cached[1]
        else:
            with self.sessions() as session:
                row = session.get(Project, project)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[project] = (now, row)
        if row is not None and self._rescreen_due(row):
            return None
        return row

    def _rescreen_due(self, row: Project) -> bool:
        return is_provisional(row) and self.clock() - row.decided_at >= self.policy.rescreen_incomplete

    def _remember_json(self, project: str, data: dict[str, Any] | None) -> None:
        """Keep what the page build right after needs, the upload times, not the whole document.

        A popular project's JSON is megabytes; a thousand of them held whole
        were most of the server's memory.  They are kept as one encoded
        string: thousands of small objects made while the big page was being
        built would each keep a block of the interpreter's memory in use
        after the page's own objects were freed.
        """
        if len(self._json) > 1_000:
            self._json.clear()
        kept = upload_times_only(data)
        self._json[project] = (self.monotonic(), None if kept is None else json.dumps(kept).encode())

    def _project_json(self, project: str) -> dict[str, Any] | None:
        """The project JSON, reused from a screening moments ago; None when unavailable."""
        hit = self._json.get(project)
        if hit is not None and self.monotonic() - hit[0] < JSON_REUSE_SECONDS:
            return None if hit[1] is None else json.loads(hit[1])
        try:
            data = self.upstream.fetch_project_json(project)
        except UpstreamError as exc:
            log.warning("project JSON unavailable for %s: %s", project, exc)
            return None
        self._remember_json(project, data)
        return data

    def _lock_for(self, project: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(project, threading.Lock())

    def _latest_snapshot(self, project: str, session: Session | None = None) -> dict[str, Any] | None:
        def query(s: Session) -> dict[str, Any] | None:
            row = s.scalars(
                select(Snapshot).where(Snapshot.project == project).order_by(desc(Snapshot.taken_at)).limit(1)
            ).first()
            return dict(row.facts) if row else None

        if session is not None:
            return query(session)
        with self.sessions() as s:
            return query(s)

    def _store_first_decision(
        self,
        project: str,
        facts: ProjectFacts,
        findings: list[Finding],
        outcome: Any,
        request: Mapping[str, Any],
        gaps: list[str] | None = None,
        seen: UpstreamInfo | None = None,
    ) -> tuple[int, dict[str, Any]] | None:
        """Store the decision, its findings and the snapshot; the snapshot's id and facts (None: decided elsewhere)."""
        now = facts.now
        with self.sessions.begin() as session:
            existing = session.get(Project, project)
            if existing is not None and not self._rescreen_due(existing):
                return None  # another process decided first
            previous_state = existing.state if existing is not None else None
            if existing is not None:
                _resolve_project_findings(session, project, now)
            reasons = list(outcome.reasons)
            if gaps:
                # Marks the decision provisional (see ``is_provisional``).
                incomplete = next(
                    f.title for f in findings if f.detector == FACTS_DETECTOR and f.title.startswith(INCOMPLETE_PREFIX)
                )
                reasons = [incomplete] + [r for r in reasons if r != incomplete]
            reason = "; ".join(reasons) if reasons else "no findings"
            decide_project(
                session,
                project=project,
                action=outcome.action,
                actor="policy",
                reason=reason,
                now=now,
                request=dict(request),
            )
            for finding in findings:
                session.add(_finding_row(project, finding, now))
            kept = snapshot_facts(facts)
            if gaps:
                kept["incomplete"] = list(gaps)
            if seen is not None:
                kept["upstream"] = stored_fields(seen)
            snapshot = Snapshot(project=project, taken_at=now, facts=kept)
            session.add(snapshot)
            session.flush()  # its id, for completing it later (``_record_owners``)
            stored = (snapshot.id, kept)
            for finding in findings:
                if finding.severity >= Severity.CRITICAL:
                    record_event(
                        session,
                        severity="critical",
                        kind=f"finding:{finding.detector}",
                        project=project,
                        message=finding.title,
                        details=finding.to_dict(),
                        at=now,
                    )
        metrics.record_decision(outcome.action, [f.detector for f in findings])
        if outcome.action != "allow" and PROJECT_STATE_OF_ACTION[outcome.action] != previous_state:
            self.notify(
                "quarantine" if outcome.action == "review" else "deny",
                {"project": project, "action": outcome.action, "reasons": list(outcome.reasons),
                 "findings": [f.to_dict() for f in findings]},
            )
        for finding in findings:
            if finding.severity >= Severity.CRITICAL:
                self.notify("critical-finding", {"project": project, "finding": finding.to_dict()})
        return stored

    def _hold_release(
        self,
        session: Session,
        project: str,
        version: str,
        upload_time: datetime | None,
        action: str,
        held_until: datetime | None,
        reason: str,
        findings: Iterable[Finding],
        now: datetime,
    ) -> Release:
        """Record a new release the policy holds or denies, with the findings that say why."""
        decide_release(
            session,
            project=project,
            version=version,
            action=action,
            actor="policy",
            reason=reason,
            now=now,
            held_until=held_until,
            upload_time=upload_time,
        )
        for finding in findings:
            session.add(_finding_row(project, finding, now, version=version))
        return session.scalars(
            select(Release).where(Release.project == project, Release.version == version)
        ).one()


def release_upload_times(page: ProjectPage | None, data: Mapping[str, Any] | None) -> dict[str, datetime]:
    """Earliest upload time per version, from the JSON API or the page (PEP 700)."""
    times: dict[str, datetime] = {}

    def add(version: str, value: Any) -> None:
        when = parse_utc(value)
        if when is not None and (version not in times or when < times[version]):
            times[version] = when

    releases = (data or {}).get("releases")
    if isinstance(releases, Mapping):
        for version, files in releases.items():
            if isinstance(files, list):
                for f in files:
                    if isinstance(f, Mapping):
                        add(str(version), f.get("upload_time_iso_8601") or f.get("upload_time"))
    if page is not None:
        for f in page.files:
            version = f.version
            if version is not None:
                add(version, f.upload_time)
    return times


def upload_times_only(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A project JSON document cut down to its upload times, in the same shape."""
    if data is None:
        return None
    times = release_upload_times(None, data)
    return {"releases": {version: [{"upload_time_iso_8601": when.isoformat()}] for version, when in times.items()}}


def _held_as_undated(row: Release) -> bool:
    """Held by the policy only because its upload time was unknown."""
    return row.decided_by == POLICY_ACTOR and row.state == HELD and row.upload_time is None


def is_provisional(row: Project) -> bool:
    """A policy decision taken while upstream facts were missing (see ``Screening.screen``)."""
    return row.decided_by == POLICY_ACTOR and row.reason.startswith(INCOMPLETE_PREFIX)


def facts_findings(facts: ProjectFacts, gaps: list[str], versions: list[str], rescreen: timedelta) -> list[Finding]:
    """What the screening could not know, as findings a reviewer reads with the others.

    Missing upstream facts (``gaps``) are a medium finding (by default the
    project waits, and is screened again after ``rescreen``); releases with
    no known upload time are a low one (their holds say the rest).
    """
    findings = []
    if gaps:
        findings.append(Finding(
            FACTS_DETECTOR,
            Severity.MEDIUM,
            f"{INCOMPLETE_PREFIX}: {'; '.join(gaps)}; screened again after {rescreen.total_seconds():g} s",
            None,
            {"gaps": list(gaps), "rescreen_after_seconds": rescreen.total_seconds()},
        ))
    unknown = [v for v in versions if v not in facts.release_uploads]
    if unknown:
        title = f"no upload time known for {len(unknown)} of {len(versions)} releases: each is held as new"
        if facts.first_upload is None:
            title += "; the project's age could not be checked"
        findings.append(Finding(
            FACTS_DETECTOR,
            Severity.LOW,
            title,
            None,
            {"releases_without_upload_time": unknown[:100], "first_upload": None if facts.first_upload is None
             else facts.first_upload.isoformat()},
        ))
    return findings


def unknown_upload_finding(version: str, now: datetime) -> Finding:
    """The evidence kept with a release held because nobody says when it was uploaded."""
    return Finding(
        FACTS_DETECTOR,
        Severity.LOW,
        f"release {version} has no known upload time (neither the page nor the project JSON says): held as new",
        None,
        {"uploaded_at": None, "first_seen": now.isoformat()},
        release=version,
    )


def _resolve_project_findings(session: Session, project: str, now: datetime) -> None:
    """Close the project-level findings of a provisional decision that is being taken again."""
    for row in session.scalars(
        select(FindingRow).where(
            FindingRow.project == project, FindingRow.version.is_(None), FindingRow.resolved_at.is_(None)
        )
    ):
        row.resolved_at = now


def snapshot_facts(facts: ProjectFacts) -> dict[str, Any]:
    """The ownership facts kept for the next comparison (JSON-ready)."""
    changed = facts.ownership_changed_at
    if facts.previous_roles is not None and facts.roles is not None and dict(facts.roles) != dict(facts.previous_roles):
        changed = facts.now
    return {
        "roles": dict(facts.roles) if facts.roles is not None else None,
        "emails": sorted(facts.emails) if facts.emails is not None else None,
        "first_upload": facts.first_upload.isoformat() if facts.first_upload else None,
        "ownership_changed_at": changed.isoformat() if changed else None,
    }


def _versions_of(page: ProjectPage) -> list[str]:
    versions = {v for f in page.files if (v := f.version)}
    return sorted(versions)


def _emails(data: Mapping[str, Any] | None) -> frozenset[str] | None:
    info = (data or {}).get("info")
    if not isinstance(info, Mapping):
        return None
    found = set()
    for key in ("author_email", "maintainer_email"):
        value = info.get(key)
        if isinstance(value, str):
            for part in value.split(","):
                part = part.strip()
                if "<" in part and part.endswith(">"):
                    part = part[part.rindex("<") + 1 : -1]
                if "@" in part:
                    found.add(part.lower())
    return frozenset(found)



def _finding_row(project: str, finding: Finding, now: datetime, version: str | None = None) -> FindingRow:
    return FindingRow(
        project=project,
        version=version or finding.release,
        detector=finding.detector,
        severity=str(finding.severity),
        title=finding.title,
        target=finding.target,
        evidence=dict(finding.evidence),
        found_at=now,
    )
