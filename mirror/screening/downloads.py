"""Where the downloads detector's statistics come from in the server.

The detector (``detectors.downloads``) is pure: it reads ``facts.downloads``
and stays silent when that is None.  Without a provider it never fires, so
the mirror hands screening one built here: monthly counts from the popular
snapshot the typosquat detector already loaded (the bundled
``detectors/data/popular_packages.csv``, or the operator's
``[detectors] popular_file``).  The snapshot is read from memory only: no
name is sent anywhere to learn its count.  A name missing from the
snapshot has no count (unknown, never zero).
"""

from __future__ import annotations

import threading
from typing import Callable

from detectors.downloads import DownloadStatsProvider, SnapshotStatsProvider
from detectors.facts import DownloadStats
from mirror.screening.detector_setup import DetectorSetup

__all__ = ["downloads_provider"]


def downloads_provider(setup: DetectorSetup) -> Callable[[str], DownloadStats | None]:
    """The ``Screening(downloads=...)`` function for this process's detector setup.

    Building it costs nothing: the corpus is loaded on the first screening
    that asks, the same one the name detectors use.
    """
    provider: list[DownloadStatsProvider] = []
    lock = threading.Lock()

    def stats(name: str) -> DownloadStats | None:
        if not provider:
            with lock:
                if not provider:
                    provider.append(SnapshotStatsProvider(setup.corpus()))
        return provider[0].stats(name)

    return stats
