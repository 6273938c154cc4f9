"""Content screening in the service: scan a release's files, store what was
found, and let the policy hold or deny the release before a byte is served.

The rule-matching core (``mirror.content``) is pure; this module gives it
the files (from the verified store), the baseline (the inventory of the
last release the mirror approved), stores the result per file and rule
set, and records the policy's decision.  Two ways in:

* ``screen_later``: a new release held by the cooldown is fetched into the
  store (never served while held) and scanned in the background once no
  client has been at work for ``held_scan_quiet`` seconds, so clients never
  wait for it and an install that is running never shares the machine with it;
* ``ensure_screened``: a file asked for with no scan under today's rules
  (its release was allowed at once, or the rules changed) is scanned before
  its last byte is released.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from detectors.facts import Finding, Severity
from mirror.config import ContentSettings
from mirror.content.config import ScanConfig
from mirror.content.rules import RuleSet, default_rules
from mirror.content.scan import Artifact
from mirror.db.models import ArtifactScan, FindingRow, PinnedFile, Release
from mirror.memory import release_free_memory
from mirror.screening.decisions import decide_release
from mirror.screening.events import record_event
from mirror.screening.scan_process import InProcessScans, Scans
from mirror.states import ALLOWED, HELD, POLICY_ACTOR

log = logging.getLogger(__name__)

# What a content or provenance finding makes of its release, strictest first.
ReleaseAction = str  # "deny" | "hold" | "allow"
STRICTNESS = {"allow": 0, "hold": 1, "deny": 2}


def scan_config(settings: ContentSettings) -> ScanConfig:
    """The scanner's limits from ``[content]``."""
    return ScanConfig(
        max_archive_bytes=settings.max_archive_bytes,
        max_total_bytes=settings.max_total_bytes,
        max_member_bytes=settings.max_member_bytes,
        max_members=settings.max_members,
        max_seconds=settings.max_seconds,
        max_ratio=settings.max_ratio,
        max_nested_bytes=settings.max_nested_bytes,
        max_pickle_bytes=settings.max_pickle_bytes,
        rule_scan_bytes=settings.rule_scan_bytes,
        binary_scan_bytes=settings.binary_scan_bytes,
        allowed_pickle_paths={project: frozenset(paths) for project, paths in settings.allowed_pickles.items()},
    )


@dataclass(frozen=True)
class FileToScan:
    """One pinned distribution file of a release."""

    project: str
    version: str
    filename: str
    sha256: str
    upstream_url: str
    size: int | None


def file_to_scan(pin: PinnedFile) -> FileToScan:
    return FileToScan(pin.project, pin.version or "", pin.filename, pin.sha256, pin.upstream_url, pin.size)


@dataclass(frozen=True)
class Provenance:
    """What is known of one file's PEP 740 provenance when it is scanned.

    ``known`` is False when the upstream publishes provenance for none of
    the project's files: then a missing one says nothing ("not attested"
    would be a false alarm on every index without PEP 740).
    """

    document: bytes | None
    known: bool


def representative(files: Sequence[FileToScan]) -> FileToScan:
    """The one file of a release that says most about all of them: the sdist (every wheel is
    built from that source), else a pure-Python wheel, else the first wheel by name."""
    def rank(item: FileToScan) -> tuple[int, str]:
        if not item.filename.endswith(".whl"):
            return 0, item.filename
        return (1 if item.filename.endswith("-none-any.whl") else 2), item.filename

    return min(files, key=rank)


def release_action(findings: Iterable[Finding], action_for: Callable[[Finding], str]) -> tuple[ReleaseAction, list[Finding]]:
    """The strictest action the policy takes on these findings, and the findings that caused it."""
    strictest, causes = "allow", []
    for finding in findings:
        wanted = action_for(finding)
        wanted = "hold" if wanted == "review" else wanted
        if wanted not in STRICTNESS or wanted == "allow":
            continue
        if STRICTNESS[wanted] > STRICTNESS[strictest]:
            strictest, causes = wanted, [finding]
        elif wanted == strictest:
            causes.append(finding)
    return strictest, causes


def merged_inventory(scans: Sequence[ArtifactScan]) -> dict[str, Any] | None:
    """One release's baseline from the scans of its files."""
    inventories = [scan.report.get("inventory") or {} for scan in scans]
    if not inventories:
        return None
    merged = dict(inventories[-1])
    merged["artifacts"] = [a for inventory in inventories for a in inventory.get("artifacts", [])]
    merged["has_pickles"] = any(inventory.get("has_pickles") for inventory in inventories)
    return merged


class ContentScreening:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        blob_path: Callable[[FileToScan], Path],
        provenance: Callable[[FileToScan], Provenance],
        action_for: Callable[[Finding], str],
        notify: Callable[[str, dict[str, Any]], None],
        config: ScanConfig | None = None,
        workers: int = 2,
        rules: RuleSet | None = None,
        held_release_files: str = "one",
        prefetch_queue: int = 16,
        scans: Scans | None = None,
        held_scan_quiet: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.held_release_files = held_release_files  # [content] held_release_files: "one" or "all"
        # [content] held_scan_quiet: seconds with no client work before a held release's scan starts.
        self.held_scan_quiet = held_scan_quiet
        self.monotonic = monotonic
        self.prefetch_queue = prefetch_queue  # [content] prefetch_queue: chosen files scanned ahead
        self._prefetching: set[str] = set()  # sha256 of those queued or running
        self.clock = clock
        self.blob_path = blob_path  # fetches into the verified store if needed; raises on failure
        self.provenance = provenance  # fetches and keeps the provenance document if upstream has one
        self.action_for = action_for
        self.notify = notify
        self.config = config or ScanConfig()
        self.rules = rules or default_rules()  # its version now; compiled on the first scan
        self.scans = scans or InProcessScans(self.rules)  # where a scan runs: worker processes or here
        self._background = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="content-scan")
        # Scans ahead of a client's download: apart from the held ones, which may wait a long while.
        self._ahead = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="content-ahead")
        # The provenance document is fetched while the file is: both wait on the upstream.
        self._beside = ThreadPoolExecutor(max_workers=4 + workers, thread_name_prefix="content-provenance")
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._per_file: dict[str, threading.Lock] = {}
        # Clients waiting for a scan right now; background scans wait between members while any do
        # (they share the interpreter, and a held release can wait, a client cannot).
        self._waiting_clients = 0
        self._no_client_waits = threading.Condition(self._lock)
        self._last_client = monotonic()  # the last time a client waited, chose a file or had a page built
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._no_client_waits.notify_all()
        self._background.shutdown(wait=False, cancel_futures=True)
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self._beside.shutdown(wait=False, cancel_futures=True)
        self.scans.close()

    # -- asking ------------------------------------------------------------

    def scan_of(self, sha256: str) -> ArtifactScan | None:
        """The scan of a blob under today's rules, or None when it was not looked at yet."""
        with self.sessions() as session:
            return session.scalars(
                select(ArtifactScan).where(ArtifactScan.sha256 == sha256, ArtifactScan.ruleset == self.rules.version)
            ).first()

    def has_scan(self, sha256: str) -> bool:
        """Whether a blob was looked at under today's rules (without reading its report, a big JSON document)."""
        with self.sessions() as session:
            return session.scalar(
                select(ArtifactScan.id)
                .where(ArtifactScan.sha256 == sha256, ArtifactScan.ruleset == self.rules.version)
                .limit(1)
            ) is not None

    # -- scanning ----------------------------------------------------------

    def queue_held(self, project: str, now: datetime) -> None:
        """Queue the files of ``project``'s releases in their cooldown that today's rules have not seen.

        Called after a page build, which is when new releases appear (and
        a client is at work: the scans wait for it to finish).
        """
        self.client_seen()
        with self.sessions() as session:
            held = {
                r.version
                for r in session.scalars(select(Release).where(Release.project == project, Release.state == HELD))
                if r.held_until is not None and r.held_until > now
            }
            if not held:
                return
            scanned = set(session.scalars(
                select(ArtifactScan.sha256).where(ArtifactScan.project == project, ArtifactScan.ruleset == self.rules.version)
            ))
            pins = [
                file_to_scan(pin)
                for pin in session.scalars(select(PinnedFile).where(PinnedFile.project == project))
                if pin.version in held and pin.sha256 not in scanned and not pin.blocked_reason
            ]
        by_version: dict[str, list[FileToScan]] = {}
        for item in pins:
            by_version.setdefault(item.version, []).append(item)
        for files in by_version.values():
            self.screen_later(files if self.held_release_files == "all" else [representative(files)])

    def unscanned_stored(self, stored: Callable[[str], bool]) -> list[FileToScan]:
        """Distribution files in the store that today's rules have not looked at (the re-audit's list)."""
        with self.sessions() as session:
            scanned = set(session.scalars(select(ArtifactScan.sha256).where(ArtifactScan.ruleset == self.rules.version)))
            pins = list(session.scalars(select(PinnedFile).where(PinnedFile.blocked_reason.is_(None))))
        return [file_to_scan(pin) for pin in pins if pin.sha256 not in scanned and stored(pin.sha256)]

    def prefetch(self, item: FileToScan) -> bool:
        """Fetch and scan a file a client has just chosen (it read the metadata), ahead of its download.

        A resolver reads the metadata of every project first and downloads
        afterwards, so the scans run while it resolves.  Bounded by
        ``prefetch_queue``; True when the file was queued.
        """
        self.client_seen()
        with self._lock:
            if len(self._prefetching) >= self.prefetch_queue or item.sha256 in self._prefetching:
                return False
            self._prefetching.add(item.sha256)
        if self.has_scan(item.sha256):
            with self._lock:
                self._prefetching.discard(item.sha256)
            return False
        self._ahead.submit(self._prefetch_quietly, item)
        return True

    def _prefetch_quietly(self, item: FileToScan) -> None:
        try:
            self.ensure_screened(item, background=True)
        except Exception:  # noqa: BLE001 - the download that follows scans it, or says why not
            log.warning(
                "scanning %s ahead of its download failed; it is scanned when asked for", item.filename, exc_info=True
            )
        finally:
            with self._lock:
                self._prefetching.discard(item.sha256)
        release_free_memory()

    def screen_later(self, files: Sequence[FileToScan]) -> None:
        """Queue a held release's files for a background scan (once per release)."""
        if not files:
            return
        key = (files[0].project, files[0].version)
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
        self._background.submit(self._screen_quietly, key, list(files))

    def _screen_quietly(self, key: tuple[str, str], files: list[FileToScan]) -> None:
        try:
            for item in files:
                if not self._wait_for_quiet():
                    return
                self.ensure_screened(item, background=True)
        except Exception:  # noqa: BLE001 - a background job must log, not die silently
            log.exception("content screening of %s %s failed; its files are scanned when first asked for", *key)
        finally:
            with self._lock:
                self._queued.discard(key)

    def ensure_screened(self, item: FileToScan, *, background: bool = False) -> ArtifactScan:
        """Scan ``item`` unless it already was under today's rules; store and decide.

        A client's scan (``background`` False) goes first: background scans
        wait between members while one runs.  A client is counted only once
        it holds the file's lock, so one waiting for a background scan of
        the same file never makes that scan wait for it.
        """
        with self._file_lock(item.sha256):
            existing = self.scan_of(item.sha256)
            if existing is not None:
                return existing
            if background:
                return self._scan(item, pause=self._wait_for_clients)
            with self._client_waiting():
                return self._scan(item, pause=None)

    def warm_up(self) -> None:
        """A never-seen project is being screened: its files come next, so the scan workers start now."""
        self.scans.start()

    def client_seen(self) -> None:
        """A client is at work now: held releases' scans wait ``held_scan_quiet`` seconds more."""
        with self._lock:
            self._last_client = self.monotonic()

    def _wait_for_quiet(self) -> bool:
        """Until no client was seen for ``held_scan_quiet`` seconds; False when closed meanwhile."""
        with self._lock:
            while not self._closed:
                left = self._last_client + self.held_scan_quiet - self.monotonic()
                if left <= 0:
                    return True
                self._no_client_waits.wait(left)
            return False

    @contextlib.contextmanager
    def _client_waiting(self) -> Iterator[None]:
        with self._lock:
            self._last_client = self.monotonic()
            self._waiting_clients += 1
        try:
            yield
        finally:
            with self._lock:
                self._last_client = self.monotonic()
                self._waiting_clients -= 1
                if not self._waiting_clients:
                    self._no_client_waits.notify_all()

    def _wait_for_clients(self) -> None:
        with self._lock:
            while self._waiting_clients:
                self._no_client_waits.wait()

    def _scan(self, item: FileToScan, *, pause: Callable[[], None] | None) -> ArtifactScan:
        provenance_later = self._beside.submit(self.provenance, item)
        path = self.blob_path(item)
        provenance = provenance_later.result()
        with self.sessions() as session:
            previous = self._baseline(session, item)
        artifact = Artifact(
            item.filename, path, sha256=item.sha256,
            provenance=provenance.document, provenance_known=provenance.known,
        )
        outcome = self.scans.scan(artifact, previous, self.config, pause=pause)
        return self._store(item, outcome.report, outcome.findings, outcome.complete)

    def _file_lock(self, sha256: str) -> threading.Lock:
        with self._lock:
            return self._per_file.setdefault(sha256, threading.Lock())

    def _baseline(self, session: Session, item: FileToScan) -> dict[str, Any] | None:
        """The inventory of the newest approved release older than ``item``'s (None: a first release)."""
        approved = set(session.scalars(
            select(Release.version).where(Release.project == item.project, Release.state == ALLOWED)
        ))
        # Versions first, reports (a big JSON document per file) only for the release that is the baseline.
        candidates = [
            (scan_id, version)
            for scan_id, version, action in session.execute(
                select(ArtifactScan.id, ArtifactScan.version, ArtifactScan.action)
                .where(ArtifactScan.project == item.project)
            )
            if version in approved and action != "deny" and _older(version, item.version)
        ]
        if not candidates:
            return None
        newest = max((version for _, version in candidates), key=_version_key)
        ids = [scan_id for scan_id, version in candidates if version == newest]
        scans = session.scalars(select(ArtifactScan).where(ArtifactScan.id.in_(ids)).order_by(ArtifactScan.id))
        return merged_inventory(list(scans))

    def _store(self, item: FileToScan, report: Mapping[str, Any], findings: list[Finding], complete: bool) -> ArtifactScan:
        try:
            return self._store_once(item, report, findings, complete)
        except IntegrityError:  # another process (a replica) stored its scan of the same bytes first
            existing = self.scan_of(item.sha256)
            if existing is None:
                raise
            return existing

    def _store_once(
        self, item: FileToScan, report: Mapping[str, Any], findings: list[Finding], complete: bool
    ) -> ArtifactScan:
        now = self.clock()
        action, causes = release_action(findings, self.action_for)
        worst = max((f.severity for f in findings), default=None)
        with self.sessions.begin() as session:
            row = ArtifactScan(
                project=item.project, version=item.version, filename=item.filename, sha256=item.sha256,
                ruleset=self.rules.version, scanned_at=now, complete=complete,
                worst=str(worst) if worst is not None else None, action=action, report=dict(report),
            )
            session.add(row)
            for finding in findings:
                session.add(FindingRow(
                    project=item.project, version=item.version, detector=finding.detector,
                    severity=str(finding.severity), title=finding.title, target=finding.target,
                    evidence={**finding.evidence, "artifact": item.filename, "ruleset": self.rules.version},
                    found_at=now,
                ))
            if action != "allow":
                reason = f"content of {item.filename}: " + "; ".join(f.title for f in causes[:3])
                decide_release(
                    session, project=item.project, version=item.version,
                    action=action, actor=POLICY_ACTOR, reason=reason, now=now, held_until=None,
                )
            for finding in findings:
                if finding.severity >= Severity.CRITICAL:
                    record_event(
                        session, severity="critical", kind=f"finding:{finding.detector}", project=item.project,
                        filename=item.filename, message=finding.title, details=finding.to_dict(), at=now,
                    )
            session.flush()
            session.expunge(row)
        if action != "allow":
            self.notify("content-" + ("deny" if action == "deny" else "hold"), {
                "project": item.project, "version": item.version, "file": item.filename, "action": action,
                "findings": [f.to_dict() for f in causes],
            })
        return row


def _version_key(text: str) -> tuple[int, Any]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _older(candidate: str, than: str) -> bool:
    return _version_key(candidate) < _version_key(than)


