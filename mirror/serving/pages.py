"""Stored project pages: serve fresh ones, refresh stale ones, survive upstream outages.

The hot path is a dictionary lookup: each process keeps the stored bodies of
recently served pages in memory and re-reads the database row only after
``recheck`` seconds, so a warm request renders nothing and asks nobody.
A stale page is refreshed once (single-flight per project within a process)
with a conditional request; if upstream fails, the last good page is served
and marked stale.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mirror import metrics
from mirror.clock import Clock
from mirror.db.models import Page, PinnedFile
from mirror.screening.events import record_event
from mirror.serving.pagebuild import Pin, build_page, files_base_for
from mirror.simple.model import ProjectPage
from mirror.simple.parse import parse_project_json, parse_project_page
from mirror.simple.render import page_of_json, render_project_html, render_project_json
from mirror.upstream.client import NOT_FOUND, NOT_MODIFIED, Fetched, UpstreamClient
from mirror.upstream.errors import UpstreamError

log = logging.getLogger(__name__)

# Seconds a process trusts its in-memory copy before re-reading the row, so
# that a decision taken in another worker reaches every worker quickly.
RECHECK_SECONDS = 2.0
# After an upstream failure, serve the stale page this long before retrying.
FAILURE_BACKOFF_SECONDS = 10.0
STORED_BASE = "stored:"  # base URL for parsing our own stored upstream JSON
# session.info key: file-change notifications waiting for their transaction to commit.
_CHANGED_KEY = "indexguard.file_changed"
FILE_CHANGED_REASON = "upstream changed a published file"
FILE_REMOVED_REASON = "upstream removed this file (a reviewer may release it)"


@dataclass(frozen=True)
class ServedPage:
    project: str
    json_gz: bytes
    html_gz: bytes
    etag: str
    checked_at: datetime
    stale: bool = False


# The HTML body of a page no HTML client has asked for yet.
NO_HTML = b""


class Answer:
    """Where a never-seen project's page goes once rendered, ahead of its commit (``store_fetched``).

    One-shot: a transaction retried after a conflict renders again, but the
    client already has its page.
    """

    def __init__(self, send: Callable[[ServedPage], None]) -> None:
        self._send = send
        self.sent = False

    def send(self, page: ServedPage) -> None:
        if not self.sent:
            self.sent = True
            self._send(page)


class PageUnavailable(Exception):
    """No stored page and upstream could not give one."""


class ByteLRU:
    """A tiny LRU bounded by the total size of the cached bodies."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[float, ServedPage]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[float, ServedPage] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, loaded: float, page: ServedPage) -> None:
        size = len(page.json_gz) + len(page.html_gz)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1].json_gz) + len(old[1].html_gz)
            if size > self.max_bytes:
                return
            self._items[key] = (loaded, page)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= len(evicted.json_gz) + len(evicted.html_gz)

    def discard(self, key: str) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1].json_gz) + len(old[1].html_gz)


class PageService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        upstream: UpstreamClient,
        ttl: float,
        clock: Clock,
        monotonic: Callable[[], float],
        register_releases: Callable[[Session, str, ProjectPage], Iterable[str]] = lambda s, n, p: (),
        cache_bytes: int = 32 * 1024 * 1024,
        notify: Callable[[str, dict[str, Any]], None] = lambda kind, payload: None,
        hold_removed: bool = True,
        stale_timeout: float | None = None,
        public_url: str = "",
        derive_metadata_from: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.derive_metadata_from = derive_metadata_from  # [upstream] derive_metadata(_min_bytes)
        # Pages are written with file links under this URL ([server] public_url); a stored page
        # written under another one is rebuilt from its stored upstream copy when next read.
        self.public_url = public_url
        self.upstream = upstream
        self.ttl = timedelta(seconds=ttl)
        self.clock = clock
        self.monotonic = monotonic
        # Records releases seen for the first time (and the policy's hold on them); returns those to hide.
        self.register_releases = register_releases
        self.notify = notify
        self.hold_removed = hold_removed
        self.stale_timeout = stale_timeout
        self.cache = ByteLRU(cache_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._retry_after: dict[str, float] = {}

    def get(self, project: str) -> ServedPage | None:
        """The page to serve for a canonical project name; None if upstream has none.

        Raises PageUnavailable when there is no stored page and upstream fails.
        """
        hit = self.cached(project)
        if hit is not None:
            return hit
        stored = self._load(project)
        if stored is not None and self._is_fresh(stored):
            self.cache.put(project, self.monotonic(), stored)
            metrics.PAGE_HIT.inc()
            return stored
        lock = self._lock_for(project)
        if not lock.acquire(blocking=False):
            if stored is not None:
                # A stale page and another thread refreshing it: don't wait on upstream.
                metrics.PAGE_STALE.inc()
                return replace(stored, stale=True)
            lock.acquire()  # the first fetch is under way: wait, then look again
            stored = self._load(project)
        elif stored is not None and self.monotonic() < self._retry_after.get(project, 0.0):
            lock.release()  # upstream failed a moment ago: back off
            metrics.PAGE_STALE.inc()
            return replace(stored, stale=True)
        try:
            if stored is not None and self._is_fresh(stored):
                page: ServedPage | None = stored
            else:
                page = self._refresh(project, stored)
        finally:
            lock.release()
        if page is not None:
            self.cache.put(project, self.monotonic(), page)
        else:
            self.cache.discard(project)
        return page

    @contextmanager
    def single_flight(self, project: str) -> Iterator[None]:
        """Hold ``project``'s page lock: one first fetch per project in this process at a time."""
        with self._lock_for(project):
            yield

    def fetch_new(self, project: str) -> Fetched | None:
        """Upstream's page of a project the mirror has no page of; None when upstream has none.

        Stores nothing: the caller screens the project first, then calls
        ``store_fetched``, so the first build already applies the decision.
        Raises PageUnavailable when upstream fails.
        """
        metrics.PAGE_MISS.inc()
        try:
            result = self.upstream.fetch_project(project)
        except UpstreamError as exc:
            raise PageUnavailable(str(exc)) from None
        if result is NOT_FOUND or not isinstance(result, Fetched):
            return None
        return result

    def store_fetched(self, project: str, fetched: Fetched, *, answer: Answer | None = None) -> ServedPage:
        """Store and build a page fetched from upstream (by ``fetch_new``, or by the re-audit).

        ``answer``, when given, gets a never-seen project's page as soon as it
        is rendered, before its pins are written and committed: a big page's
        pins cost as long as a client takes to read it.  Whoever serves the
        page then must make file look-ups wait for the commit.
        """
        page = self._save_fetched(project, fetched, self.clock(), answer)
        self.cache.put(project, self.monotonic(), page)
        return page

    def fresh(self, project: str) -> ServedPage | None:
        """The page if memory or the database holds a fresh one, else None; never asks upstream, never builds."""
        hit = self.cached(project)
        if hit is not None:
            return hit
        stored = self._load(project, rebuild=False)
        if stored is None or not self._is_fresh(stored):
            return None
        self.cache.put(project, self.monotonic(), stored)
        metrics.PAGE_HIT.inc()
        return stored

    def with_html(self, page: ServedPage) -> ServedPage:
        """``page`` with its HTML body: rendered from its JSON on the first HTML request, then kept.

        Kept in the database row and the cache only while they still hold
        this very page (same ETag): a page rebuilt meanwhile renders its own.
        """
        if page.html_gz != NO_HTML:
            return page
        done = replace(page, html_gz=html_of(page.json_gz))
        with self.sessions.begin() as session:
            session.execute(
                update(Page).where(Page.project == page.project, Page.etag == page.etag).values(html_gz=done.html_gz)
            )
        cached = self.cache.get(page.project)
        if cached is not None and cached[1].etag == page.etag and cached[1].html_gz == NO_HTML:
            self.cache.put(page.project, cached[0], replace(cached[1], html_gz=done.html_gz))
        return done

    def _is_fresh(self, page: ServedPage) -> bool:
        return self.clock() - page.checked_at < self.ttl

    def cached(self, project: str) -> ServedPage | None:
        """The page if memory alone can answer (no database, no upstream), else None.

        Lets the route answer a warm request on the event loop instead of
        paying for a worker-thread hand-off.
        """
        cached = self.cache.get(project)
        if cached is None or self.monotonic() - cached[0] >= RECHECK_SECONDS:
            return None
        page = cached[1]
        if page.stale or self.clock() - page.checked_at < self.ttl:
            metrics.PAGE_HIT.inc()
            return page
        return None

    def rebuild(self, project: str) -> None:
        """Re-filter the stored upstream page (after a decision), without asking upstream."""
        for attempt in range(3):
            try:
                with self._writing() as session:
                    row = session.get(Page, project)
                    if row is None:
                        return
                    self._store(session, project, _stored_upstream(row), row.upstream_etag, row.fetched_at, row)
                break
            except IntegrityError:
                # Another worker registered the same new releases first; rebuild on top of them.
                if attempt == 2:
                    raise
        self.cache.discard(project)

    def forget(self, project: str) -> None:
        self.cache.discard(project)

    def remember(self, project: str, page: ServedPage) -> None:
        """Keep ``page`` (built here or in the page process) as this process's copy."""
        self.cache.put(project, self.monotonic(), page)

    def listed_sha256(self, project: str, filename: str) -> str | None:
        """What the last upstream page lists as ``filename``'s sha256 (None: not listed).

        A reviewer clears a re-upload block only once this is the pinned hash again.
        """
        page = self.upstream_page(project)
        for f in page.files if page is not None else ():
            if f.filename == filename:
                return (f.hashes.get("sha256") or "").lower() or None
        return None

    def has_page(self, project: str) -> bool:
        """Whether a page of ``project`` is stored (without reading it: a big one is MiBs to unpack)."""
        with self.sessions() as session:
            return session.scalar(select(Page.project).where(Page.project == project)) is not None

    def upstream_page(self, project: str) -> ProjectPage | None:
        """The last upstream page as fetched (unfiltered), for screening facts."""
        with self.sessions() as session:
            row = session.get(Page, project)
            return _stored_upstream(row) if row is not None else None

    # -- internals ---------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A transaction whose file-change notifications go out once it has committed.

        A re-upload is blocked inside the page transaction; telling anyone
        before the block is stored (or when the transaction is retried)
        would announce a block that does not exist.
        """
        with self.sessions.begin() as session:
            yield session
        for kind, payload in session.info.pop(_CHANGED_KEY, []):
            self.notify(kind, payload)

    def _follow_removals(
        self, session: Session, project: str, removed: Iterable[str], relisted: Iterable[str], now: datetime
    ) -> None:
        """Files upstream dropped (as the index drops malware): recorded, notified, and held unless told to keep.

        Each disappearance acts once: a reviewer who clears the hold is not
        overruled by the next page build, and a file listed again is just listed.
        """
        rows = {r.filename: r for r in session.scalars(select(PinnedFile).where(PinnedFile.project == project))}
        for name in relisted:
            if name in rows:
                rows[name].removed_at = None
        for name in removed:
            row = rows.get(name)
            if row is None or row.removed_at is not None:
                continue
            row.removed_at = now
            if self.hold_removed and not row.blocked_reason:
                row.blocked_reason = FILE_REMOVED_REASON
            title = f"upstream no longer lists {name}" + (" (held)" if self.hold_removed else "")
            record_event(session, severity="high", kind="file-removed", project=project, filename=name,
                         message=title, details={"sha256": row.sha256, "held": self.hold_removed}, at=now)
            session.info.setdefault(_CHANGED_KEY, []).append(("file-removed", {
                "project": project,
                "finding": {"detector": "file-removed", "severity": "high", "title": title, "target": name,
                            "release": row.version, "evidence": {"filename": name, "pinned_sha256": row.sha256}},
            }))

    def _lock_for(self, project: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(project)
            if lock is None:
                if len(self._locks) > 10_000:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[project] = threading.Lock()
            return lock

    def _load(self, project: str, *, rebuild: bool = True) -> ServedPage | None:
        """The stored page; one written under another public URL is built again first (or None, not ``rebuild``)."""
        with self.sessions() as session:
            row = session.get(Page, project)
            if row is None:
                return None
            if (row.public_url or "") == self.public_url:
                return _served(row)
        if not rebuild:
            return None
        self.rebuild(project)
        with self.sessions() as session:
            row = session.get(Page, project)
            return _served(row) if row is not None else None

    def _refresh(self, project: str, stored: ServedPage | None) -> ServedPage | None:
        metrics.PAGE_MISS.inc()
        etag = None
        if stored is not None:
            with self.sessions() as session:
                row = session.get(Page, project)
                etag = row.upstream_etag if row is not None else None
        try:
            # With a stale page to fall back on, wait only briefly: pip gives up after 15 s without a byte.
            result = self.upstream.fetch_project(project, etag, timeout=self.stale_timeout if stored else None)
        except UpstreamError as exc:
            if stored is None:
                raise PageUnavailable(str(exc)) from None
            log.warning("serving stale page for %s: %s", project, exc)
            metrics.PAGE_STALE.inc()
            self._retry_after[project] = self.monotonic() + FAILURE_BACKOFF_SECONDS
            return replace(stored, stale=True)
        now = self.clock()
        if result is NOT_FOUND:
            with self._writing() as session:
                session.execute(delete(Page).where(Page.project == project))
                pinned = list(session.scalars(select(PinnedFile.filename).where(PinnedFile.project == project)))
                self._follow_removals(session, project, pinned, [], now)
            return None
        if result is NOT_MODIFIED:
            # Rebuild from the stored upstream page: holds may have matured.
            with self._writing() as session:
                row = session.get(Page, project)
                if row is None:
                    return None
                return self._store(session, project, _stored_upstream(row), row.upstream_etag, row.fetched_at, row)
        assert isinstance(result, Fetched)
        return self._save_fetched(project, result, now)

    def _save_fetched(self, project: str, result: Fetched, now: datetime, answer: Answer | None = None) -> ServedPage:
        if result.page.skipped:
            log.info(
                "upstream page for %s: skipped %d unusable entries (first: %s)",
                project, len(result.page.skipped), result.page.skipped[0],
            )
        for attempt in range(3):
            try:
                with self._writing() as session:
                    row = session.get(Page, project)
                    return self._store(session, project, result.page, result.etag, now, row, sent=result, answer=answer)
            except IntegrityError:
                # Another worker stored the same page or pins first; retry on top of it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _store(
        self,
        session: Session,
        project: str,
        upstream_page: ProjectPage,
        upstream_etag: str | None,
        fetched_at: datetime,
        row: Page | None,
        *,
        sent: Fetched | None = None,
        answer: Answer | None = None,
    ) -> ServedPage:
        """Build, pin and store ``upstream_page``: fetched just now (``sent``), or read from ``row`` (a rebuild).

        ``answer`` gets the page before the pins are written when the
        project has none yet (see ``store_fetched``); at most once, so a
        retried transaction does not answer again.
        """
        now = self.clock()
        pins = _load_pins(session, project)
        built = build_page(
            upstream_page, pins,
            hidden_versions=self.register_releases(session, project, upstream_page),
            files_base=files_base_for(self.public_url),
            derive_metadata_from=self.derive_metadata_from,
        )
        bodies = render_bodies(built.page, now)
        if answer is not None and not pins:
            answer.send(bodies)
        if built.new_pins:  # one executemany: a big project lists tens of thousands of files
            session.execute(insert(PinnedFile.__table__), [_pin_values(project, pin, now) for pin in built.new_pins])
        for changed in built.changed:
            _block_changed(session, project, changed.filename, changed.listed_sha256)
        if built.removed or built.relisted:
            self._follow_removals(session, project, built.removed, built.relisted, now)
        if row is None:
            row = Page(project=project)
            session.add(row)
        row.upstream_etag = upstream_etag
        row.upstream_serial = upstream_page.last_serial
        row.fetched_at = fetched_at
        row.checked_at = now
        if sent is not None:  # a rebuild's upstream copy is the stored one, unchanged
            # Kept as sent (rendering it anew cost as much as building the page), read back only
            # by the mirror: fastest compression, not smallest.
            row.upstream_gz = gzip.compress(sent.body, 1, mtime=0)
            row.upstream_type, row.upstream_base = sent.content_type, sent.url
        row.json_gz, row.html_gz, row.etag = bodies.json_gz, bodies.html_gz, bodies.etag
        row.public_url = self.public_url or None
        session.flush()
        return _served(row)


def _stored_upstream(row: Page) -> ProjectPage:
    """The upstream page of ``row``, parsed as it was when fetched."""
    body = gzip.decompress(row.upstream_gz)
    if row.upstream_type is None:  # the mirror's own JSON form, absolute links
        return parse_project_json(body, base_url=STORED_BASE)
    page = parse_project_page(body, row.upstream_type, row.upstream_base or STORED_BASE)
    # A serial upstream sent as a header (X-PyPI-Last-Serial) is not in the body.
    return page if page.last_serial is not None else replace(page, last_serial=row.upstream_serial)


def render_bodies(page: ProjectPage, checked_at: datetime | None = None, *, html: bool = False) -> ServedPage:
    """The JSON body, compressed, with an ETag for the content; the HTML body too when ``html``.

    Without it the HTML body is left empty (``NO_HTML``) until an HTML client
    asks (``PageService.with_html``): pip and uv read JSON, and rendering and
    compressing a big page's HTML costs as much as its JSON.
    """
    json_body = render_project_json(page)
    return ServedPage(
        project=page.name,
        json_gz=gzip.compress(json_body, 6, mtime=0),
        html_gz=gzip.compress(render_project_html(page), 6, mtime=0) if html else NO_HTML,
        etag=hashlib.sha256(json_body).hexdigest()[:32],
        checked_at=checked_at or datetime.min.replace(tzinfo=timezone.utc),
    )


def html_of(json_gz: bytes) -> bytes:
    """The compressed HTML body of the page whose compressed JSON body is ``json_gz``."""
    return gzip.compress(render_project_html(page_of_json(gzip.decompress(json_gz))), 6, mtime=0)


def _served(row: Page) -> ServedPage:
    return ServedPage(
        project=row.project,
        json_gz=row.json_gz,
        html_gz=row.html_gz,
        etag=row.etag,
        checked_at=row.checked_at,
    )


def _load_pins(session: Session, project: str) -> dict[str, Pin]:
    rows = session.scalars(select(PinnedFile).where(PinnedFile.project == project))
    return {
        r.filename: Pin(
            filename=r.filename,
            sha256=r.sha256,
            version=r.version,
            size=r.size,
            upstream_url=r.upstream_url,
            metadata_sha256=r.metadata_sha256,
            upload_time=r.upload_time,
            blocked_reason=r.blocked_reason,
            provenance_url=r.provenance_url,
            removed=r.removed_at is not None,
        )
        for r in rows
    }


def _pin_values(project: str, pin: Pin, now: datetime) -> dict[str, Any]:
    return {
        "project": project,
        "filename": pin.filename,
        "version": pin.version,
        "sha256": pin.sha256,
        "size": pin.size,
        "upstream_url": pin.upstream_url,
        "metadata_sha256": pin.metadata_sha256,
        "upload_time": pin.upload_time,
        "provenance_url": pin.provenance_url,
        "first_seen": now,
    }


def _block_changed(session: Session, project: str, filename: str, listed: str) -> None:
    """Block a pinned file whose upstream listing now has other bytes: a re-upload.

    Published files are immutable on the public index, so new bytes under an
    old name are an attack or an accident, and either way not what the
    lockfiles pinned.  The block is recorded as a critical event, notified
    like a critical finding once stored, and stays until a reviewer clears it
    (``mirror.review.actions.unblock_file``).
    """
    row = session.scalars(
        select(PinnedFile).where(PinnedFile.project == project, PinnedFile.filename == filename)
    ).one()
    if row.blocked_reason:
        return
    row.blocked_reason = FILE_CHANGED_REASON
    title = f"upstream changed a published file: {filename} was {row.sha256}, now listed as {listed}"
    evidence = {"filename": filename, "pinned_sha256": row.sha256, "listed_sha256": listed}
    record_event(
        session,
        severity="critical",
        kind="file-changed",
        project=project,
        filename=filename,
        message=title,
        details={"pinned_sha256": row.sha256, "listed_sha256": listed},
    )
    session.info.setdefault(_CHANGED_KEY, []).append(("critical-finding", {
        "project": project,
        "finding": {"detector": "file-changed", "severity": "critical", "title": title, "target": filename,
                    "release": row.version, "evidence": evidence},
    }))
