"""The heavy side of a project page: fetch it, screen a never-seen project, build and store the page.

Everything that parses a whole upstream page happens here, so that it can
run in a process of its own (``mirror.serving.page_process``): a big
project's page is tens of MiB of small objects for a moment, and a server
that built it itself kept most of that for good as a fragmented heap.  The
answer is the stored page, bytes only.  ``PageProcess`` offers the same
three methods; ``ProjectService`` does not know which one it has.

Raises ``PageUnavailable`` when upstream is needed and fails; returns None
when upstream has no such project.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mirror.memory import release_free_memory
from mirror.screening.screen import Screening
from mirror.serving.pages import Answer, PageService, ServedPage


class Builder(Protocol):
    remote: bool  # builds in another process, whose decisions and pages this one must read afresh

    def first(self, project: str, request: Mapping[str, Any]) -> ServedPage | None: ...

    def current(self, project: str) -> ServedPage | None: ...

    def rebuild(self, project: str) -> None: ...

    def after_store(self, project: str, then: Callable[[], None]) -> None: ...

    def wait_for_stores(self) -> bool: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


class PageBuilder:
    """The page work, in this process."""

    remote = False

    def __init__(self, *, pages: PageService, screening: Screening) -> None:
        self.pages = pages
        self.screening = screening

    def first(self, project: str, request: Mapping[str, Any], answer: Answer | None = None) -> ServedPage | None:
        """The cold path of a never-seen project: fetch its upstream page and JSON together, screen, then build.

        Screening comes before the first build, so the first page served
        already applies the decision and the release holds.  ``request``
        describes the client, for the record of the screening.  ``answer``
        gets the page before its pins are committed (``PageService.store_fetched``).
        """
        page: ServedPage | None = None
        with self.pages.single_flight(project):
            if self.screening.project_row(project) is not None and self.pages.has_page(project):
                pass  # another client's first screening, here or in another process, ended while this one waited
            elif (stored := self.pages.upstream_page(project)) is None:
                project_json = self.screening.prefetch(project)  # while the page is fetched
                fetched = self.pages.fetch_new(project)
                if fetched is None:
                    project_json.cancel()
                    return None
                self.screening.screen(project, fetched.page, request, project_json)
                page = self.pages.store_fetched(project, fetched, answer=answer)
            else:  # stored with no decision standing (cleared, or provisional and due): screen it, build again
                self.screening.screen(project, stored, request)
                self.pages.rebuild(project)
        release_free_memory()  # the parse and build of a big page were tens of MiB for a moment
        return page if page is not None else self.current(project)  # outside the lock: it may need a refresh

    def current(self, project: str) -> ServedPage | None:
        """The stored page, refreshed from upstream when stale (a stale copy when upstream fails)."""
        return self.pages.get(project)

    def rebuild(self, project: str) -> None:
        """Build the stored page again from its stored upstream copy (a decision changed what it may list)."""
        self.pages.rebuild(project)

    def after_store(self, project: str, then: Callable[[], None]) -> None:
        """Run ``then`` once ``project``'s page is committed: here that is always already."""
        then()

    def wait_for_stores(self) -> bool:
        """Wait for pages answered before their commit: here there are none."""
        return False

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass
