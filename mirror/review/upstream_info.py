"""What upstream says about a project (summary, authors, owners), for the reviewer's eyes.

These fields are exactly what a look-alike project fakes.  When the
screening snapshot kept them (an ``upstream`` entry in its facts, in the
shape ``stored_fields`` writes), the page shows what screening saw, with
when; otherwise, and on "refresh", it asks upstream's JSON API.  That
client shares the mirror's own upstream session - its network guard *and*
its configured CA bundle (``settings.ca_bundle``) - so a reviewer sees what
screening could reach; only the timeout is shorter, because a slow upstream
must not make the review page hang.  Answers are cached briefly.  Every
value is attacker-controlled text; the templates escape it and never turn
it into a link.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Mapping

from mirror.screening.screen import ownership_roles
from mirror.upstream.client import UpstreamClient
from mirror.upstream.errors import UpstreamError

TIMEOUT = 5.0
TTL = 300.0
MAX_ENTRIES = 1000
MAX_TEXT = 500
FIELDS = ("summary", "author", "author_email", "maintainer", "maintainer_email", "license", "version", "home_page")


@dataclass(frozen=True)
class UpstreamInfo:
    """Upstream metadata; ``error`` says why it is missing when it is."""

    fields: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    project_urls: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    # Where the facts come from: "stored" (kept at screening) or "live" (asked now), and when.
    origin: str = "live"
    seen_at: datetime | None = None


def extract(document: Mapping[str, Any] | None) -> UpstreamInfo:
    """Pick the reviewer-relevant strings out of a project JSON document."""
    if document is None:
        return UpstreamInfo(error="upstream does not have this project")
    info = document.get("info")
    info = info if isinstance(info, Mapping) else {}
    fields = {k: _text(info[k]) for k in FIELDS if isinstance(info.get(k), str) and info[k].strip()}
    urls = info.get("project_urls")
    project_urls = (
        {_text(str(k)): _text(v) for k, v in list(urls.items())[:20] if isinstance(v, str)}
        if isinstance(urls, Mapping)
        else {}
    )
    roles = list((ownership_roles(document) or {}).items())[:50]
    owners = {_text(user): _text(role) for user, role in roles}
    return UpstreamInfo(fields=fields, owners=owners, project_urls=project_urls)


def stored_fields(info: UpstreamInfo) -> dict[str, Any]:
    """The JSON-ready form kept in a snapshot's ``upstream`` entry."""
    return {"fields": dict(info.fields), "owners": dict(info.owners), "project_urls": dict(info.project_urls)}


def stored(snapshot: Mapping[str, Any] | None, taken_at: datetime | None) -> UpstreamInfo | None:
    """What screening saw, when its snapshot kept an ``upstream`` entry; None otherwise."""
    entry = (snapshot or {}).get("upstream")
    if not isinstance(entry, Mapping):
        return None

    def strings(key: str) -> dict[str, str]:
        value = entry.get(key)
        if not isinstance(value, Mapping):
            return {}
        return {_text(str(k)): _text(v) for k, v in list(value.items())[:50] if isinstance(v, str)}

    return UpstreamInfo(
        fields=strings("fields"), owners=strings("owners"), project_urls=strings("project_urls"),
        origin="stored", seen_at=taken_at,
    )


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


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
