"""What upstream says about a project (summary, authors, owners), for the reviewer's eyes.

Nothing stored holds these fields, and they are exactly what a look-alike
project fakes, so the project page asks upstream's JSON API when it is
opened.  The answer is cached briefly and fetched with a short timeout: a
slow upstream must not make the review page hang.  Every value is
attacker-controlled text; the templates escape it and never turn it into
a link.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mirror.upstream.client import UpstreamClient, UpstreamError

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
    owners: dict[str, str] = {}
    ownership = document.get("ownership")
    if isinstance(ownership, Mapping) and isinstance(ownership.get("roles"), list):
        for item in ownership["roles"][:50]:
            if isinstance(item, Mapping) and isinstance(item.get("user"), str):
                owners[_text(item["user"])] = _text(str(item.get("role", "")))
    return UpstreamInfo(fields=fields, owners=owners, project_urls=project_urls)


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


class UpstreamInfoCache:
    """Fetches and caches ``UpstreamInfo`` per project."""

    def __init__(self, client: UpstreamClient, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.monotonic = monotonic
        self._entries: dict[str, tuple[float, UpstreamInfo]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_services(cls, services: Any) -> UpstreamInfoCache:
        """One per app, with its own short-timeout client sharing the mirror's network guard."""
        upstream = services.upstream
        client = UpstreamClient(
            upstream.simple_url,
            timeout=min(TIMEOUT, upstream.timeout),
            max_page_bytes=upstream.max_page_bytes,
            guard=upstream.guard,
            json_api_url=upstream.json_api_url,
        )
        return cls(client)

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
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[project] = (now, info)
        return info

    def forget(self, project: str) -> None:
        with self._lock:
            self._entries.pop(project, None)
