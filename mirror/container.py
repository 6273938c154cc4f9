"""The mirror's parts wired together from settings, one instance per process.

Routes call one method here each; this keeps them thin and gives tests one
object to build with an injected clock.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detectors.facts import InternalNames
from mirror.clock import Clock, utcnow
from mirror.config import Settings
from mirror.db.models import Page, PinnedFile, Project, Release
from mirror.db.session import make_engine, make_session_factory
from mirror.errors import NotFound, TooManyRequests, Unavailable
from mirror.notify import WebhookNotifier
from mirror.sections import check_sections
from mirror.screening.content import ContentScreening, FileToScan, Provenance, scan_config
from mirror.screening.detector_setup import DetectorSetup
from mirror.screening.downloads import downloads_provider
from mirror.screening.policy import action_for
from mirror.screening.events import record_event
from mirror.screening.screen import Screening
from mirror.serving.fetcher import FileFetcher
from mirror.serving.gate import Standing, check_file, check_page, project_refusal
from mirror.serving.internal import InternalSettings, InternalSources
from mirror.serving.pagebuild import PROVENANCE_SUFFIX
from mirror.serving.why import Explanation, explain
from mirror.serving.pages import RECHECK_SECONDS as WARM_RECHECK_SECONDS, PageService, PageUnavailable, ServedPage, render_bodies
from mirror.serving.store import BlobStore
from mirror.serving.throttle import ClientBudget, NotFoundCache
from mirror.simple.metadata import core_metadata_summary, same_version
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.client import UpstreamClient, private_index_client
from mirror.upstream.netguard import NetGuard, guarded_session, requests_opener, upstream_guard

METADATA_SUFFIX = ".metadata"  # PEP 658: a file's core metadata beside it
UNFETCHED = "unfetched"  # a provenance upstream lists that the mirror has not fetched yet
# Seconds a client is told to wait when upstream is needed and down: short,
# because pip obeys it on every retry and gives up after a few.
RETRY_AFTER_SECONDS = 2

@dataclass(frozen=True)
class FileTarget:
    """A blob to serve: its hash, where upstream has it, and its size if known.

    ``needs_scan``: content screening has not looked at this distribution
    file under today's rules, so it is scanned before its last byte is sent.
    """

    sha256: str
    upstream_url: str
    size: int | None
    is_metadata: bool
    project: str
    filename: str
    version: str = ""
    needs_scan: bool = False


T = TypeVar("T")

# Set by `indexguard serve` after it has migrated the database in a child process.
SCHEMA_READY_ENV = "INDEXGUARD_SCHEMA_READY"


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = check_sections(settings)  # before anything is created
        self.clock = clock
        self.notifier = WebhookNotifier.from_settings(settings, clock=clock)
        settings.storage.path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        if os.environ.get(SCHEMA_READY_ENV) != "1":
            from mirror.db import migrate  # alembic costs memory; `serve` migrates in a child

            migrate.upgrade(self.engine)
        self.sessions = make_session_factory(self.engine)
        self.store = BlobStore(
            settings.storage.path / "files", rehash_max_bytes=settings.storage.rehash_max_bytes
        )
        self.guard, self.breaker, self.upstream = build_upstream(settings)
        self.fetcher = FileFetcher(
            self.store,
            requests_opener(
                self.guard, timeout=settings.upstream.timeout, session=self.upstream.session, breaker=self.breaker
            ),
            on_mismatch=self._record_mismatch,
            max_size=settings.upstream.max_file_bytes,
            max_metadata_size=settings.upstream.max_metadata_bytes,
        )
        self.internal = build_internal(settings, self.sessions, self.store, self.breaker, clock, monotonic)
        self.detectors = DetectorSetup.from_settings(settings)
        self.content = (
            ContentScreening(
                sessions=self.sessions,
                clock=clock,
                blob_path=self._stored_blob,
                provenance=self._provenance,
                action_for=lambda finding: action_for(finding, self.detectors.policy),
                notify=self.notify,
                config=scan_config(settings.content),
                workers=settings.content.workers,
            )
            if settings.content.enabled
            else None
        )
        self.screening = Screening(
            sessions=self.sessions,
            upstream=self.upstream,
            clock=clock,
            internal_names=self._internal_names,
            detector_config=self.detectors.config,
            policy=self.detectors.policy,
            corpus=self.detectors.corpus,
            downloads=downloads_provider(self.detectors, settings),
            notify=self.notify,
            monotonic=monotonic,
        )
        self.pages = PageService(
            sessions=self.sessions,
            upstream=self.upstream,
            ttl=settings.upstream.index_ttl,
            clock=clock,
            monotonic=monotonic,
            register_releases=self.screening.register_releases,
            notify=self.notify,
            hold_removed=settings.upstream.on_removed == "hold",
            stale_timeout=min(settings.upstream.stale_refresh_timeout, settings.upstream.timeout),
        )
        self._internal_served: dict[str, ServedPage] = {}
        self.not_found = NotFoundCache(settings.upstream.not_found_ttl, monotonic)
        self.screening_budget = ClientBudget(settings.server.screenings_per_client_per_minute, monotonic)
        self.monotonic = monotonic
        # project -> when (monotonic) the slow path last found it public and allowed.
        self._allowed_at: dict[str, float] = {}
        # (sha256, filename) -> (when allowed, target): the warm file path.
        self._allowed_files: dict[tuple[str, str], tuple[float, FileTarget]] = {}

    def close(self) -> None:
        if self.content is not None:
            self.content.close()
        if self.notifier is not None:
            self.notifier.close()
        self.engine.dispose()

    # -- Simple API --------------------------------------------------------

    def installable_projects(self) -> list[str]:
        """The names a client may install now, for the root listing.

        Quarantined and denied projects (and public pages of internal names)
        stay off it: the listing must not advertise what the gate refuses.
        """
        now = self.clock()
        with self.sessions() as session:
            names = set(session.scalars(select(Page.project)))
            rows = {row.name: row for row in session.scalars(select(Project))}
        names |= self.internal.source_names()
        listed = []
        for name in sorted(names):
            standing = Standing(name, self.internal.is_internal(name), rows.get(name), now)
            if (standing.internal or standing.row is not None) and project_refusal(standing) is None:
                listed.append(name)
        return listed

    def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue a webhook notification; returns at once (delivery runs on its own thread)."""
        if self.notifier is not None:
            self.notifier.notify(kind, payload)

    def after_decision(self, project: str) -> None:
        """Make a decision visible at once in this process: re-filter the page, drop caches."""
        self._allowed_at.pop(project, None)
        self._forget_files(project)
        self.screening.forget(project)
        self.pages.rebuild(project)

    def _internal_names(self) -> InternalNames:
        names = self.internal.all_names()
        cached = getattr(self, "_internal_index", None)
        if cached is None or cached[0] != names:
            self._internal_index = (names, InternalNames.build(names, self.internal.settings.patterns))
        return self._internal_index[1]

    def warm_page(self, project: str) -> ServedPage | None:
        """The page when memory alone can answer, else None (then call ``project_page``).

        A warm request is the common case and must cost no more than reading
        stored bytes, so it skips the worker-thread hand-off that a possibly
        blocking ``project_page`` needs.  It only answers for a public project
        that ``project_page`` found allowed within the last RECHECK_SECONDS,
        and only while the page cache holds a fresh page, so a decision taken
        in another process still shows within seconds; ``after_decision``,
        ``forget_internal`` and ``pages.forget`` end it at once in this one.
        """
        allowed_at = self._allowed_at.get(project)
        if allowed_at is None or self.monotonic() - allowed_at >= WARM_RECHECK_SECONDS:
            return None
        return self.pages.cached(project)

    def warm_file(self, sha256: str, filename: str) -> FileTarget | None:
        """A file target when memory alone can answer (allowed within RECHECK_SECONDS)."""
        hit = self._allowed_files.get((sha256, filename))
        if hit is None or self.monotonic() - hit[0] >= WARM_RECHECK_SECONDS:
            return None
        return hit[1]

    def _forget_files(self, project: str) -> None:
        for key, (_, target) in list(self._allowed_files.items()):
            if target.project == project:
                self._allowed_files.pop(key, None)

    def standing(self, project: str) -> Standing:
        """What the gate needs to know of ``project`` now."""
        return Standing(
            name=project,
            internal=self.internal.is_internal(project),
            row=self.screening.project_row(project),
            now=self.clock(),
        )

    def ready_page(self, project: str) -> ServedPage | None:
        """The page when no upstream call is needed to answer, else None.

        Raises Refused like ``project_page``.  Lets the web layer keep warm
        traffic out of the room where upstream-bound work waits.
        """
        standing = self.standing(project)
        check_page(standing)
        if standing.internal or standing.row is None:
            return None
        page = self.pages.fresh(project)
        if page is not None:
            self._remember_allowed(project)
        return page

    def project_page(self, project: str, request: Mapping[str, Any]) -> ServedPage:
        """The page to serve; raises NotFound, Refused or Unavailable.

        ``request`` describes the client, for the record of a first screening.
        """
        standing = self.standing(project)
        check_page(standing)
        if standing.internal:
            return self._internal_page(project)
        if standing.row is None:
            if project in self.not_found:
                raise NotFound(f"no project named '{project}' on the upstream index.")
            wait = self.screening_budget.take(request.get("client"))
            if wait is not None:
                raise TooManyRequests(
                    "this client asked for too many never-seen projects in the last minute.",
                    retry_after=max(1, round(wait)),
                )
            page = self._screen_first(project, request)
            check_page(self.standing(project))
        else:
            page = self._stored_page(project)
        self._remember_allowed(project)
        return page

    def _remember_allowed(self, project: str) -> None:
        if len(self._allowed_at) > 50_000:
            self._allowed_at.clear()
        self._allowed_at[project] = self.monotonic()

    def _screen_first(self, project: str, request: Mapping[str, Any]) -> ServedPage:
        """The cold path of a never-seen project: fetch its upstream page, screen, then build the page.

        Screening comes before the first build, so the first page served
        already applies the decision and the release holds.
        """
        page: ServedPage | None = None
        with self.pages.single_flight(project):
            stored = self.pages.upstream_page(project)
            if stored is None:
                fetched = self._from_upstream(project, lambda: self.pages.fetch_new(project))
                self.screening.screen(project, fetched.page, request)
                page = self.pages.store_fetched(project, fetched)
            else:  # stored already (by another thread or process): screen what was stored, build again
                self.screening.screen(project, stored, request)
                self.pages.rebuild(project)
        if page is None:
            return self._stored_page(project)  # outside the lock: a stale page may need its refresh
        self._look_inside_new_releases(project)
        return page

    def _stored_page(self, project: str) -> ServedPage:
        page = self._from_upstream(project, lambda: self.pages.get(project))
        self._look_inside_new_releases(project)
        return page

    def _look_inside_new_releases(self, project: str) -> None:
        """New releases appear when a page is built: queue their content scans now."""
        if self.content is not None:
            self.content.queue_held(project, self.clock())

    def _from_upstream(self, project: str, fetch: Callable[[], T | None]) -> T:
        """What ``fetch`` got, with upstream failures and unknown names as the domain errors."""
        try:
            value = fetch()
        except PageUnavailable as exc:
            raise Unavailable(
                f"the upstream index is unavailable and '{project}' is not cached yet ({exc}).",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        if value is None:
            self.not_found.add(project)
            raise NotFound(f"no project named '{project}' on the upstream index.")
        return value

    def forget_internal(self, project: str) -> None:
        self.internal.forget(project)
        self._internal_served.pop(project, None)
        self._allowed_at.pop(project, None)
        self._forget_files(project)

    def _internal_page(self, project: str) -> ServedPage:
        page = self.internal.page(project)
        if page is None:
            raise NotFound(
                f"'{project}' is an internal name and no internal source has it; "
                "the public index is never asked for internal names."
            )
        served = self._internal_served.get(project)
        fresh = render_bodies(page, self.clock())
        if served is None or served.etag != fresh.etag:
            self._internal_served[project] = fresh
        return self._internal_served[project]

    def why(self, project: str, version: str | None = None) -> Explanation:
        """Why ``project`` (or one version of it) is or is not installable now."""
        with self.sessions() as session:
            releases = list(session.scalars(select(Release).where(Release.project == project)))
        return explain(self.standing(project), releases, version)

    def known_metadata(self, project: str, version: str) -> dict[str, Any] | None:
        """Summary, dependencies and Python range of a release, when its core metadata is stored.

        Never fetches: the JSON API says "unknown" rather than wait on upstream.
        """
        with self.sessions() as session:
            pins = list(session.scalars(select(PinnedFile).where(PinnedFile.project == project)))
        for pin in pins:
            if pin.metadata_sha256 and pin.version and same_version(pin.version, version):
                path = self.store.path(pin.metadata_sha256)
                if path.exists():
                    return core_metadata_summary(path.read_bytes())
        return None

    # -- files -------------------------------------------------------------

    def file_target(self, sha256: str, filename: str) -> FileTarget:
        """The blob to serve for a file URL; raises NotFound or Refused."""
        target = self._file_target(sha256, filename)
        if target.needs_scan:
            return target  # not for the warm path until it was looked at
        if len(self._allowed_files) > 100_000:
            self._allowed_files.clear()
        self._allowed_files[(sha256, filename)] = (self.monotonic(), target)
        return target

    def screen_file(self, target: FileTarget) -> None:
        """Scan a distribution file before it is served (fetching it into the store if needed).

        The scan may hold or deny its release: ask ``file_target`` again afterwards.
        """
        if self.content is not None:
            self.content.ensure_screened(
                FileToScan(target.project, target.version, target.filename, target.sha256, target.upstream_url, target.size)
            )

    def _provenance(self, item: FileToScan) -> Provenance:
        """The file's provenance document, fetched once from upstream and kept in the store."""
        with self.sessions.begin() as session:
            pins = list(session.scalars(select(PinnedFile).where(PinnedFile.project == item.project)))
            pin = next((p for p in pins if p.sha256 == item.sha256 and p.filename == item.filename), None)
            known = any(p.provenance_url for p in pins)
            if pin is None or not pin.provenance_url:
                return Provenance(None, known)
            if pin.provenance_sha256 and self.store.has(pin.provenance_sha256):
                return Provenance(self.store.path(pin.provenance_sha256).read_bytes(), True)
            document = self.upstream.fetch_provenance(pin.provenance_url)
            if document is not None:
                pin.provenance_sha256, _ = self.store.put_stream(io.BytesIO(document))
            return Provenance(document, True)

    def provenance_target(self, sha256: str, filename: str) -> FileTarget:
        """The mirror's copy of a file's provenance (fetched now if needed); raises like ``file_target``."""
        target = self.file_target(sha256, filename)
        self._provenance(FileToScan(target.project, target.version, target.filename.removesuffix(PROVENANCE_SUFFIX),
                                    sha256, target.upstream_url, None))
        return self._file_target(sha256, filename)

    def _stored_blob(self, item: FileToScan) -> Path:
        if not self.store.has(item.sha256):
            self.fetcher.ensure(item.sha256, item.upstream_url, item.size)
        return self.store.path(item.sha256)

    def _file_target(self, sha256: str, filename: str) -> FileTarget:
        is_metadata = filename.endswith(METADATA_SUFFIX)
        is_provenance = filename.endswith(PROVENANCE_SUFFIX)
        dist_name = filename.removesuffix(METADATA_SUFFIX).removesuffix(PROVENANCE_SUFFIX)
        with self.sessions() as session:
            pin = session.scalars(
                select(PinnedFile).where(PinnedFile.sha256 == sha256, PinnedFile.filename == dist_name)
            ).first()
            blob = sha256
            if pin is not None and is_metadata:
                blob = pin.metadata_sha256
            elif pin is not None and is_provenance:
                blob = pin.provenance_sha256 or ("" if not pin.provenance_url else UNFETCHED)
            if pin is None or not blob:
                raise NotFound("no such file.")
            owner = session.scalars(
                select(PinnedFile.project)
                .where(
                    (PinnedFile.sha256 == blob)
                    | (PinnedFile.metadata_sha256 == blob)
                    | (PinnedFile.provenance_sha256 == blob)
                )
                .order_by(PinnedFile.id)
                .limit(1)
            ).first()
        check_file(pin, self.standing(pin.project), self.screening.release_state(pin.project, pin.version), owner)
        version = pin.version or ""
        if is_provenance:  # read, never run; UNFETCHED until provenance_target fetched it
            return FileTarget(blob, pin.provenance_url or "", None, True, pin.project, filename, version)
        if is_metadata:  # core metadata is read, never run: it needs no content scan
            return FileTarget(blob, pin.upstream_url + METADATA_SUFFIX, None, True, pin.project, filename, version)
        needs_scan = self.content is not None and self.content.scan_of(pin.sha256) is None
        return FileTarget(pin.sha256, pin.upstream_url, pin.size, False, pin.project, filename, version, needs_scan)

    def _record_mismatch(self, sha256: str, url: str, actual: str) -> None:
        with self.sessions.begin() as session:
            pin = session.scalars(
                select(PinnedFile).where(
                    (PinnedFile.sha256 == sha256) | (PinnedFile.metadata_sha256 == sha256)
                )
            ).first()
            record_event(
                session,
                severity="critical",
                kind="hash-mismatch",
                project=pin.project if pin else None,
                filename=pin.filename if pin else None,
                message=f"upstream bytes do not match the pinned sha256 {sha256} (got {actual})",
                details={"expected": sha256, "actual": actual},
                at=self.clock(),
            )


def build_upstream(settings: Settings) -> tuple[NetGuard, CircuitBreaker, UpstreamClient]:
    """The network guard, the circuit breaker and the upstream client, sharing one session."""
    # A local upstream lifts the address check, so the guard pins its host and port.
    guard = upstream_guard(settings.upstream_url, settings.file_hosts)
    # Real time, not the injectable one: a cool-down must end in tests too.
    breaker = CircuitBreaker(
        settings.upstream.breaker_failures,
        window=settings.upstream.breaker_window,
        cooldown=settings.upstream.breaker_cooldown,
    )
    http = guarded_session(guard)
    http.verify = settings.ca_bundle
    upstream = UpstreamClient(
        settings.upstream_url,
        timeout=settings.upstream.timeout,
        max_page_bytes=settings.upstream.max_page_bytes,
        guard=guard,
        session=http,
        breaker=breaker,
    )
    return guard, breaker, upstream


def build_internal(
    settings: Settings,
    sessions: sessionmaker[Session],
    store: BlobStore,
    breaker: CircuitBreaker,
    clock: Clock,
    monotonic: Callable[[], float],
) -> InternalSources:
    """The internal sources, with the private index's own client (its credentials stay on its origin)."""
    internal = InternalSources(
        settings=InternalSettings.from_mapping(settings.extra.get("internal", {})),
        sessions=sessions,
        store=store,
        clock=clock,
        monotonic=monotonic,
    )
    if internal.settings.index_url:
        internal.private = private_index_client(
            internal.settings.index_url,
            username=internal.settings.username,
            password=internal.settings.password,
            timeout=settings.upstream.timeout,
            max_page_bytes=settings.upstream.max_page_bytes,
            ca_bundle=settings.ca_bundle,
            breaker=breaker,
        )
    return internal

