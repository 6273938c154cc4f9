"""The mirror's parts wired together from settings, one instance per process.

Routes call one method here each; this keeps them thin and gives tests one
object to build with an injected clock.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from detectors.facts import InternalNames
from mirror.clock import Clock, utcnow
from mirror.db.models import Page, PinnedFile
from mirror.db.session import make_engine, make_session_factory
from mirror.screening.events import record_event
from mirror.serving.fetcher import FileFetcher
from mirror.upstream.netguard import NetGuard, guarded_session, requests_opener
from mirror.notify import WebhookNotifier
from mirror.screening.decisions import release_blocked
from mirror.screening.detector_setup import DetectorSetup
from mirror.serving.internal import INTERNAL_URL_PREFIX, InternalSettings, InternalSources
from mirror.serving.pages import RECHECK_SECONDS as WARM_RECHECK_SECONDS, PageService, ServedPage, render_bodies
from mirror.screening.screen import Screening, Verdict
from mirror.simple.model import ProjectPage
from mirror.config import Settings
from mirror.serving.store import BlobStore
from mirror.upstream.client import UpstreamClient


@dataclass(frozen=True)
class FileTarget:
    """A blob to serve: its hash, where upstream has it, and its size if known."""

    sha256: str
    upstream_url: str
    size: int | None
    is_metadata: bool
    project: str
    filename: str


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
        self.settings = settings
        self.clock = clock
        self.notifier = WebhookNotifier.from_settings(settings, clock=clock)
        settings.storage.path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        if os.environ.get(SCHEMA_READY_ENV) != "1":
            from mirror.db import migrate  # alembic costs memory; `serve` migrates in a child

            migrate.upgrade(self.engine)
        self.sessions = make_session_factory(self.engine)
        self.store = BlobStore(settings.storage.path / "files")
        local_upstream = is_local_url(settings.upstream_url)
        self.guard = NetGuard(
            # A local upstream lifts the address check, so pin the hosts instead:
            # else a hostile page could send us to any other private address.
            allowed_hosts=local_upstream_hosts(settings) if local_upstream else None,
            allow_private=local_upstream,
        )
        http = guarded_session(self.guard)
        http.verify = settings.ca_bundle
        self.upstream = UpstreamClient(
            settings.upstream_url,
            timeout=settings.upstream.timeout,
            max_page_bytes=settings.upstream.max_page_bytes,
            guard=self.guard,
            session=http,
        )
        self.fetcher = FileFetcher(
            self.store,
            requests_opener(self.guard, timeout=settings.upstream.timeout, session=http),
            on_mismatch=self._record_mismatch,
        )
        self.internal = InternalSources(
            settings=InternalSettings.from_mapping(settings.extra.get("internal", {})),
            sessions=self.sessions,
            store=self.store,
            clock=clock,
            monotonic=monotonic,
        )
        if self.internal.settings.index_url:
            credentials = (self.internal.settings.username, self.internal.settings.password)
            self.internal.private = UpstreamClient(
                self.internal.settings.index_url,
                timeout=settings.upstream.timeout,
                max_page_bytes=settings.upstream.max_page_bytes,
                guard=NetGuard(allowed_hosts=None, allow_private=True),
                auth=credentials if credentials[0] else None,
            )
        self.detectors = DetectorSetup.from_settings(settings)
        self.screening = Screening(
            sessions=self.sessions,
            upstream=self.upstream,
            clock=clock,
            internal_names=self._internal_names,
            detector_config=self.detectors.config,
            policy=self.detectors.policy,
            corpus=self.detectors.corpus,
            notify=self.notify,
            monotonic=monotonic,
        )
        self.pages = PageService(
            sessions=self.sessions,
            upstream=self.upstream,
            ttl=settings.upstream.index_ttl,
            clock=clock,
            monotonic=monotonic,
            hidden_versions=self.screening.hidden_versions,
        )
        self._internal_served: dict[str, ServedPage] = {}
        self.monotonic = monotonic
        # project -> when (monotonic) the slow path last found it public and allowed.
        self._allowed_at: dict[str, float] = {}
        # (sha256, filename) -> (when allowed, target): the warm file path.
        self._allowed_files: dict[tuple[str, str], tuple[float, FileTarget]] = {}

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        self.engine.dispose()

    # -- Simple API --------------------------------------------------------

    def known_projects(self) -> list[str]:
        with self.sessions() as session:
            return list(session.scalars(select(Page.project).order_by(Page.project)))

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

    def project_page(self, project: str, request: Request) -> ServedPage | Response:
        """The page to serve, or the response that refuses it (403/404)."""
        if self.internal.is_internal(project):
            return self._internal_page(project)
        verdict = self.screening.verdict(project)
        if verdict is None:
            info = request_info(request, self.clock())
            screened: list[Verdict] = []

            def screen(upstream_page: ProjectPage) -> None:
                screened.append(self.screening.screen(project, upstream_page, info))

            if self.pages.get(project, on_fetched=screen) is None:
                return _not_found(project)
            if screened:
                verdict = screened[0]
            else:  # the page was stored already (say, by another process): screen it now
                verdict = self.screening.screen(project, self.pages.upstream_page(project), info)
                self.pages.rebuild(project)
        if verdict.blocked:
            return PlainTextResponse(verdict.message + "\n", status_code=403)
        page = self.pages.get(project)
        if page is None:
            return _not_found(project)
        if len(self._allowed_at) > 50_000:
            self._allowed_at.clear()
        self._allowed_at[project] = self.monotonic()
        return page

    def forget_internal(self, project: str) -> None:
        self.internal.forget(project)
        self._internal_served.pop(project, None)
        self._allowed_at.pop(project, None)
        self._forget_files(project)

    def _internal_page(self, project: str) -> ServedPage | Response:
        page = self.internal.page(project)
        if page is None:
            return PlainTextResponse(
                f"indexguard: '{project}' is an internal name and no internal source has it; "
                "the public index is never asked for internal names.\n",
                status_code=404,
            )
        served = self._internal_served.get(project)
        fresh = render_bodies(page, self.clock())
        if served is None or served.etag != fresh.etag:
            self._internal_served[project] = fresh
        return self._internal_served[project]

    # -- files -------------------------------------------------------------

    def file_target(self, sha256: str, filename: str, request: Request) -> FileTarget | Response:
        """The blob to serve for a file URL, or the response that refuses it."""
        target = self._file_target(sha256, filename)
        if isinstance(target, FileTarget):
            if len(self._allowed_files) > 100_000:
                self._allowed_files.clear()
            self._allowed_files[(sha256, filename)] = (self.monotonic(), target)
        return target

    def _file_target(self, sha256: str, filename: str) -> FileTarget | Response:
        is_metadata = filename.endswith(".metadata")
        dist_name = filename.removesuffix(".metadata") if is_metadata else filename
        with self.sessions() as session:
            pin = session.scalars(
                select(PinnedFile).where(
                    PinnedFile.sha256 == sha256, PinnedFile.filename == dist_name
                )
            ).first()
        if pin is None:
            return PlainTextResponse("indexguard: no such file.\n", status_code=404)
        if pin.blocked_reason:
            return PlainTextResponse(
                f"indexguard: '{dist_name}' is blocked: {pin.blocked_reason}.\n", status_code=403
            )
        if not pin.upstream_url.startswith(INTERNAL_URL_PREFIX) and not self.internal.is_internal(pin.project):
            refusal = self._refuse_public_file(pin)
            if refusal is not None:
                return refusal
        if is_metadata:
            if not pin.metadata_sha256:
                return PlainTextResponse("indexguard: no such file.\n", status_code=404)
            return FileTarget(
                pin.metadata_sha256, pin.upstream_url + ".metadata", None, True, pin.project, filename
            )
        return FileTarget(pin.sha256, pin.upstream_url, pin.size, False, pin.project, filename)

    def _refuse_public_file(self, pin: PinnedFile) -> Response | None:
        verdict = self.screening.verdict(pin.project)
        if verdict is None:
            return PlainTextResponse(
                f"indexguard: '{pin.project}' has not been screened yet; request its index page first.\n",
                status_code=403,
            )
        if verdict.blocked:
            return PlainTextResponse(verdict.message + "\n", status_code=403)
        release = self.screening.release_state(pin.project, pin.version)
        if release is not None and release_blocked(release, self.clock()):
            return PlainTextResponse(
                f"indexguard: {pin.project} {pin.version} is {release.state}: {release.reason}. "
                "Ask an admin to review it.\n",
                status_code=403,
            )
        return None

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


def request_info(request: Request, now: datetime) -> dict[str, Any]:
    """What a reviewer wants to know about the request that triggered a decision."""
    return {
        "time": now.isoformat(),
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent", "")[:500],
        "path": request.url.path,
    }


def _not_found(project: str) -> Response:
    return PlainTextResponse(
        f"indexguard: no project named '{project}' on the upstream index.\n", status_code=404
    )


def local_upstream_hosts(settings: Settings) -> set[str]:
    """The hosts a local upstream may send us to: its own and the configured file hosts."""
    return {urlsplit(settings.upstream_url).hostname or "", *settings.file_hosts}


def is_local_url(url: str) -> bool:
    """True when the upstream itself lives on a loopback or private address."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_loopback or a.is_private for a in addresses)
