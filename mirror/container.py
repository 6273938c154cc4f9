"""The mirror's parts built from settings and wired together, one instance per process.

No request logic lives here: routes call ``projects`` (pages) and ``files``
(file URLs); the container only knows which parts it built, so it is the one
place that can tell all of them at once that a decision changed something.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.orm import Session, sessionmaker

from detectors.facts import Finding
from mirror.clock import Clock, utcnow
from mirror.config import Settings
from mirror.content.rules import default_rules
from mirror.db.session import make_engine, make_session_factory
from mirror.notify import WebhookNotifier
from mirror.sections import check_sections
from mirror.screening.content import ContentScreening, FileToScan, scan_config
from mirror.screening.detector_setup import DetectorSetup
from mirror.screening.downloads import downloads_provider
from mirror.screening.events import record_hash_mismatch
from mirror.screening.policy import action_for
from mirror.screening.scan_process import InProcessScans, ScanProcesses
from mirror.screening.screen import Screening
from mirror.serving.ahead import ScreenAhead
from mirror.serving.fetcher import FileFetcher
from mirror.serving.file_service import FileService
from mirror.serving.internal import InternalSettings, InternalSources
from mirror.serving.pages import PageService
from mirror.serving.project_service import ProjectService
from mirror.serving.provenance import ProvenanceStore
from mirror.serving.store import BlobStore
from mirror.serving.throttle import ClientBudget, NotFoundCache
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.client import UpstreamClient, private_index_client
from mirror.upstream.netguard import NetGuard, guarded_session, requests_opener, upstream_guard

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
        self.fetcher = build_fetcher(settings, self.store, self.guard, self.upstream, self.breaker,
                                     on_mismatch=partial(record_hash_mismatch, self.sessions, clock))
        self.internal = build_internal(settings, self.sessions, self.store, self.breaker, clock, monotonic)
        self.detectors = DetectorSetup.from_settings(settings)
        provenance = ProvenanceStore(self.sessions, self.store, self.upstream)
        self.content = build_content(
            settings, self.sessions, clock, self._stored_blob, provenance,
            action=lambda finding: action_for(finding, self.detectors.policy), notify=self.notify,
        )
        self.screening = build_screening(
            settings, self.sessions, self.upstream, self.internal, self.detectors, clock, monotonic, self.notify
        )
        self.pages = build_pages(settings, self.sessions, self.upstream, self.screening, clock, monotonic, self.notify)
        self.projects = ProjectService(
            sessions=self.sessions,
            store=self.store,
            internal=self.internal,
            screening=self.screening,
            pages=self.pages,
            content=self.content,
            not_found=NotFoundCache(settings.upstream.not_found_ttl, monotonic),
            screening_budget=ClientBudget(settings.server.screenings_per_client_per_minute, monotonic),
            clock=clock,
            monotonic=monotonic,
        )
        self.ahead = ScreenAhead(
            page=self.projects.page, known=self.projects.decided, per_release=settings.server.screen_ahead,
            queue=settings.server.screen_ahead_queue, workers=settings.server.screen_ahead_workers,
        ) if settings.server.screen_ahead else None
        self.files = FileService(
            sessions=self.sessions,
            standing=self.projects.standing,
            screening=self.screening,
            content=self.content,
            provenance=provenance,
            monotonic=monotonic,
            store=self.store,
            blob_path=self._stored_blob,
            derive_metadata_from=derive_metadata_from(settings),
            max_metadata_bytes=settings.upstream.max_metadata_bytes,
            wait_for_stores=self.projects.wait_for_stores,
        )

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.close()
        self.projects.close()
        self.screening.close()
        if self.content is not None:
            self.content.close()
        if self.notifier is not None:
            self.notifier.close()
        self.engine.dispose()

    def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue a webhook notification; returns at once (delivery runs on its own thread)."""
        if self.notifier is not None:
            self.notifier.notify(kind, payload)

    def after_decision(self, project: str) -> None:
        """Make a decision visible at once in this process: drop warm answers, re-filter the page."""
        self.projects.forget(project)
        self.files.forget(project)
        self.screening.forget(project)
        self.projects.rebuild(project)

    def forget_internal(self, project: str) -> None:
        """An internal upload changed ``project``: its page and files are answered afresh."""
        self.internal.forget(project)
        self.projects.forget(project)
        self.files.forget(project)

    def _stored_blob(self, item: FileToScan) -> Path:
        if not self.store.has(item.sha256):
            self.fetcher.ensure(item.sha256, item.upstream_url, item.size)
        return self.store.path(item.sha256)


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


def build_fetcher(
    settings: Settings,
    store: BlobStore,
    guard: NetGuard,
    upstream: UpstreamClient,
    breaker: CircuitBreaker,
    *,
    on_mismatch: Callable[[str, str, str], None],
) -> FileFetcher:
    """The file fetcher, on the upstream client's guarded session (files come from the allowed hosts only)."""
    return FileFetcher(
        store,
        requests_opener(guard, timeout=settings.upstream.timeout, session=upstream.session, breaker=breaker),
        on_mismatch=on_mismatch,
        max_size=settings.upstream.max_file_bytes,
        max_metadata_size=settings.upstream.max_metadata_bytes,
    )


def build_content(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Clock,
    blob_path: Callable[[FileToScan], Path],
    provenance: ProvenanceStore,
    *,
    action: Callable[[Finding], str],
    notify: Callable[[str, dict[str, Any]], None],
) -> ContentScreening | None:
    """Content screening with ``[content]``'s limits; None when it is switched off."""
    content = settings.content
    if not content.enabled:
        return None
    rules = default_rules()
    scans = (
        ScanProcesses(rules, processes=content.scan_processes, idle_seconds=content.scan_process_idle,
                      kill_grace=content.scan_kill_grace, max_report_bytes=content.max_report_bytes)
        if content.scan_processes else InProcessScans(rules)
    )
    return ContentScreening(
        sessions=sessions,
        clock=clock,
        blob_path=blob_path,
        provenance=provenance.of,
        action_for=action,
        notify=notify,
        config=scan_config(content),
        workers=content.workers,
        held_release_files=content.held_release_files,
        held_scan_quiet=content.held_scan_quiet,
        prefetch_queue=content.prefetch_queue,
        rules=rules,
        scans=scans,
    )


def build_screening(
    settings: Settings,
    sessions: sessionmaker[Session],
    upstream: UpstreamClient,
    internal: InternalSources,
    detectors: DetectorSetup,
    clock: Clock,
    monotonic: Callable[[], float],
    notify: Callable[[str, dict[str, Any]], None],
) -> Screening:
    """The first screening, with the detectors' configuration and the resembled-project limits."""
    return Screening(
        sessions=sessions,
        upstream=upstream,
        clock=clock,
        internal_names=internal.names_index,
        detector_config=detectors.config,
        policy=detectors.policy,
        corpus=detectors.corpus,
        downloads=downloads_provider(detectors, settings),
        notify=notify,
        monotonic=monotonic,
        prefetch_workers=settings.server.upstream_workers,
        resembled=dict(
            max_targets=settings.upstream.resembled_projects,
            wait_seconds=settings.upstream.resembled_wait,
            ttl_seconds=settings.upstream.resembled_ttl,
            max_entries=settings.upstream.resembled_cache_entries,
        ),
    )


def build_pages(
    settings: Settings,
    sessions: sessionmaker[Session],
    upstream: UpstreamClient,
    screening: Screening,
    clock: Clock,
    monotonic: Callable[[], float],
    notify: Callable[[str, dict[str, Any]], None],
) -> PageService:
    """The page cache; new releases are registered (and held) by the screening as pages are built."""
    return PageService(
        sessions=sessions,
        upstream=upstream,
        ttl=settings.upstream.index_ttl,
        clock=clock,
        monotonic=monotonic,
        register_releases=screening.register_releases,
        notify=notify,
        hold_removed=settings.upstream.on_removed == "hold",
        stale_timeout=min(settings.upstream.stale_refresh_timeout, settings.upstream.timeout),
        public_url=settings.server.public_url,
        derive_metadata_from=derive_metadata_from(settings),
    )


def derive_metadata_from(settings: Settings) -> int | None:
    """The smallest wheel the mirror derives core metadata for (``derives_metadata``); None: none."""
    return settings.upstream.derive_metadata_min_bytes if settings.upstream.derive_metadata else None


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

