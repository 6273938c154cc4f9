"""Where the downloads detector's statistics come from in the server.

The detector (``detectors.downloads``) is pure: it reads ``facts.downloads``
and stays silent when that is None.  Without a provider it never fires, so
the mirror hands screening one built here: monthly counts from the popular
snapshot the typosquat detector already loaded (the bundled
``detectors/data/popular_packages.csv``, or the operator's
``[detectors] popular_file``).  The snapshot is read from memory only: no
name is sent anywhere to learn its count.  A name missing from the
snapshot has no count (unknown, never zero).

An operator may name a statistics service instead (``[downloads]
service_url``, with ``{project}`` in it, answering the recent-downloads
JSON ``{"data": {"last_day", "last_week", "last_month"}}``).  It is off by
default because it tells that service every name the mirror screens; a
failure or a missing project is "unknown", never a count of zero.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, Callable
from urllib.parse import quote

from detectors.downloads import DownloadStatsProvider, SnapshotStatsProvider
from detectors.facts import DownloadStats
from mirror.config import Settings
from mirror.screening.detector_setup import DetectorSetup
from mirror.upstream.errors import UpstreamError
from mirror.upstream.netguard import guarded_get, guarded_session, upstream_guard

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024

__all__ = ["downloads_provider"]


def downloads_provider(setup: DetectorSetup, settings: Settings) -> Callable[[str], DownloadStats | None]:
    """The ``Screening(downloads=...)`` function for this process's detector setup.

    Building it costs nothing: the corpus is loaded on the first screening
    that asks, the same one the name detectors use.
    """
    if settings.downloads.service_url:
        return ServiceStatsProvider(settings.downloads.service_url, timeout=settings.upstream.timeout).stats
    provider: list[DownloadStatsProvider] = []
    lock = threading.Lock()

    def stats(name: str) -> DownloadStats | None:
        if not provider:
            with lock:
                if not provider:
                    provider.append(SnapshotStatsProvider(setup.corpus()))
        return provider[0].stats(name)

    return stats


class ServiceStatsProvider:
    """Recent download counts from the configured statistics service, through the network guard."""

    def __init__(self, url_template: str, *, timeout: float) -> None:
        self.url_template = url_template
        self.timeout = timeout
        self.guard = upstream_guard(url_template.replace("{project}", "x"))
        self.session = guarded_session(self.guard)

    def stats(self, name: str) -> DownloadStats | None:
        url = self.url_template.replace("{project}", quote(name, safe=""))
        try:
            response = guarded_get(self.session, url, guard=self.guard, timeout=self.timeout)
        except UpstreamError as exc:
            log.warning("download statistics unavailable for %s: %s", name, exc)
            return None
        try:
            if response.status_code != 200:
                return None
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        finally:
            response.close()
        if len(body) > MAX_ANSWER_BYTES:
            return None
        try:
            return recent_downloads(json.loads(body))
        except ValueError:
            return None


def recent_downloads(document: Any) -> DownloadStats | None:
    """The counts of a recent-downloads answer; None when it says nothing usable."""
    data = document.get("data") if isinstance(document, Mapping) else None
    if not isinstance(data, Mapping):
        return None

    def count(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    stats = DownloadStats(last_day=count("last_day"), last_week=count("last_week"), last_month=count("last_month"))
    return stats if any(v is not None for v in (stats.last_day, stats.last_week, stats.last_month)) else None

