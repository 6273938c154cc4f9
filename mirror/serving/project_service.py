"""The project page a client gets: the cold path of a never-seen project, the warm path, and why.

Data flows one way: the gate decides from the project's standing; a
never-seen public project is fetched, screened and only then built; a known
one comes from the page cache.  Failures leave as domain errors
(``mirror.errors``); the web layer alone turns them into HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mirror.clock import Clock
from mirror.db.models import Page, PinnedFile, Project, Release
from mirror.errors import NotFound, TooManyRequests, Unavailable
from mirror.screening.content import ContentScreening
from mirror.screening.screen import Screening
from mirror.serving.gate import Standing, check_page, project_refusal
from mirror.serving.internal import InternalSources
from mirror.serving.page_builder import Builder, PageBuilder
from mirror.serving.pages import RECHECK_SECONDS, PageService, PageUnavailable, ServedPage, render_bodies
from mirror.serving.store import BlobStore
from mirror.serving.throttle import ClientBudget, NotFoundCache
from mirror.serving.why import Explanation, explain
from mirror.simple.metadata import core_metadata_summary, same_version

# Seconds a client is told to wait when upstream is needed and down: short,
# because pip obeys it on every retry and gives up after a few.
RETRY_AFTER_SECONDS = 2
_MAX_REMEMBERED = 50_000

T = TypeVar("T")


class ProjectService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: BlobStore,
        internal: InternalSources,
        screening: Screening,
        pages: PageService,
        content: ContentScreening | None,
        not_found: NotFoundCache,
        screening_budget: ClientBudget,
        clock: Clock,
        monotonic: Callable[[], float],
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.internal = internal
        self.screening = screening
        self.pages = pages
        self.content = content
        self.not_found = not_found
        self.screening_budget = screening_budget
        self.clock = clock
        self.monotonic = monotonic
        # Where pages are fetched, screened and built: here, or a PageProcess (``use_builder``).
        self.builder: Builder = PageBuilder(pages=pages, screening=screening)
        # project -> when (monotonic) the slow path last found it public and allowed.
        self._allowed_at: dict[str, float] = {}
        self._internal_served: dict[str, ServedPage] = {}

    def use_builder(self, builder: Builder) -> None:
        """Build pages with ``builder`` from now on (a PageProcess: pages built in a process of their own)."""
        self.builder = builder

    def close(self) -> None:
        self.builder.close()

    def wait_for_stores(self) -> bool:
        """Wait for pages served before their pins were committed; False if none were (``Builder``)."""
        return self.builder.wait_for_stores()

    def standing(self, project: str) -> Standing:
        """What the gate needs to know of ``project`` now."""
        return Standing(
            name=project,
            internal=self.internal.is_internal(project),
            row=self.screening.project_row(project),
            now=self.clock(),
        )

    def decided(self, project: str) -> bool:
        """Whether no first screening is due for ``project``: decided, internal, or known missing upstream."""
        standing = self.standing(project)
        return standing.internal or standing.row is not None or project in self.not_found

    def forget(self, project: str) -> None:
        """End the warm path for ``project`` at once (a decision was taken, an upload arrived)."""
        self._allowed_at.pop(project, None)
        self._internal_served.pop(project, None)

    def installable(self) -> list[str]:
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

    def warm(self, project: str) -> ServedPage | None:
        """The page when memory alone can answer, else None (then call ``page``).

        A warm request is the common case and must cost no more than reading
        stored bytes, so it skips the worker-thread hand-off that a possibly
        blocking ``page`` needs.  It only answers for a public project that
        ``page`` found allowed within the last RECHECK_SECONDS, and only while
        the page cache holds a fresh page, so a decision taken in another
        process still shows within seconds; ``forget`` ends it in this one.
        """
        allowed_at = self._allowed_at.get(project)
        if allowed_at is None or self.monotonic() - allowed_at >= RECHECK_SECONDS:
            return None
        return self.pages.cached(project)

    def ready(self, project: str) -> ServedPage | None:
        """The page when no upstream call is needed to answer, else None.

        Raises Refused like ``page``.  Lets the web layer keep warm traffic
        out of the room where upstream-bound work waits.
        """
        standing = self.standing(project)
        check_page(standing)
        if standing.internal or standing.row is None:
            return None
        page = self.pages.fresh(project)
        if page is not None:
            self._remember_allowed(project)
        return page

    def page(self, project: str, request: Mapping[str, Any]) -> ServedPage:
        """The page to serve; raises NotFound, Refused, TooManyRequests or Unavailable.

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

    def _remember_allowed(self, project: str) -> None:
        if len(self._allowed_at) > _MAX_REMEMBERED:
            self._allowed_at.clear()
        self._allowed_at[project] = self.monotonic()

    def _screen_first(self, project: str, request: Mapping[str, Any]) -> ServedPage:
        if self.content is not None:
            self.content.warm_up()
        page = self._from_upstream(project, lambda: self.builder.first(project, request))
        self._after_build(project, page)
        return page

    def _stored_page(self, project: str) -> ServedPage:
        page = self._from_upstream(project, lambda: self.builder.current(project))
        self._after_build(project, page)
        return page

    def rebuild(self, project: str) -> None:
        """Build ``project``'s stored page again (a decision changed what it may list); drop the copy in memory."""
        self.builder.rebuild(project)
        self.pages.forget(project)

    def _after_build(self, project: str, page: ServedPage) -> None:
        """What this process does once a page was built, here or in the page process."""
        if self.builder.remote:  # this process saw none of it: its copies of the decision and page are old
            self.screening.forget(project)
            self.pages.remember(project, page)
        self.builder.after_store(project, lambda: self._look_inside_new_releases(project))

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

    def _internal_page(self, project: str) -> ServedPage:
        page = self.internal.page(project)
        if page is None:
            raise NotFound(
                f"'{project}' is an internal name and no internal source has it; "
                "the public index is never asked for internal names."
            )
        served = self._internal_served.get(project)
        fresh = render_bodies(page, self.clock(), html=True)  # small, and kept until it changes
        if served is None or served.etag != fresh.etag:
            self._internal_served[project] = fresh
        return self._internal_served[project]
