"""Asking upstream now what it says about a project, for the review page's "refresh".

Normally the page shows what the first screening saw (kept in its snapshot,
see ``mirror.upstream.project_info``); this asks upstream's JSON API again
when a reviewer wants today's answer, or when nothing was kept.  That
client shares the mirror's own upstream session - its network guard *and*
its configured CA bundle (``settings.ca_bundle``) - so a reviewer sees what
screening could reach; only the timeout is shorter, because a slow upstream
must not make the review page hang.  Answers are cached briefly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from mirror.upstream.client import UpstreamClient
from mirror.upstream.errors import UpstreamError
from mirror.upstream.project_info import UpstreamInfo, extract

TIMEOUT = 5.0
TTL = 300.0
MAX_ENTRIES = 1000


class UpstreamInfoCache:
    """Fetches and caches ``UpstreamInfo`` per project."""

    def __init__(
        self,
        client: UpstreamClient,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.monotonic = monotonic
        self.clock = clock
        self._entries: dict[str, tuple[float, UpstreamInfo]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_services(cls, services: Any) -> UpstreamInfoCache:
        """One per app: a short-timeout client over the mirror's upstream session.

        Sharing ``upstream.session`` shares its network guard and its TLS
        verification (the configured CA bundle); a session of its own would
        verify against the default store and fail on a private CA.
        """
        upstream = services.upstream
        client = UpstreamClient(
            upstream.simple_url,
            timeout=min(TIMEOUT, upstream.timeout),
            max_page_bytes=upstream.max_page_bytes,
            guard=upstream.guard,
            json_api_url=upstream.json_api_url,
            session=upstream.session,
            breaker=upstream.breaker,
        )
        return cls(client, clock=services.clock)

    def get(self, project: str) -> UpstreamInfo:
        now = self.monotonic()
        with self._lock:
            cached = self._entries.get(project)
        if cached is not None and now - cached[0] < TTL:
            return cached[1]
        try:
            info = extract(self.client.fetch_project_json(project))
        except UpstreamError as exc:
            return UpstreamInfo(error=str(exc))
        if self.clock is not None:
            info = replace(info, seen_at=self.clock())
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[project] = (now, info)
        return info

    def refresh(self, project: str) -> UpstreamInfo:
        """Ask upstream now, whatever is cached."""
        self.forget(project)
        return self.get(project)

    def forget(self, project: str) -> None:
        with self._lock:
            self._entries.pop(project, None)
