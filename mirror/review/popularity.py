"""Monthly downloads of a look-alike and of the project it imitates, side by side.

The counts come from the bundled popularity snapshot
(``detectors/data/popular_packages.csv``, read through the downloads
detector's ``SnapshotStatsProvider``).  The snapshot lists only the most
downloaded projects, so a name missing from it is not "unknown" and not
"zero": it has fewer downloads than the snapshot's last entry, and the page
says exactly that.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from detectors.downloads import SnapshotStatsProvider

_FLOORS: dict[int, tuple[int | None, int]] = {}
_FLOORS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Popularity:
    """One project's standing in the snapshot; ``monthly`` None means not listed (see ``floor``)."""

    name: str
    monthly: int | None
    rank: int | None
    floor: int | None
    listed_projects: int

    @property
    def words(self) -> str:
        if self.monthly is not None:
            rank = f" (#{self.rank:,} of {self.listed_projects:,})" if self.rank else ""
            return f"{self.monthly:,} a month{rank}"
        if self.floor is not None:
            return f"fewer than {self.floor:,} a month (not among the {self.listed_projects:,} listed)"
        return "not in the download snapshot"


def popularity(corpus: Any, name: str) -> Popularity:
    """``name``'s monthly downloads and rank from ``corpus`` (a ``PopularCorpus``), or its floor."""
    floor, size = _floor(corpus)
    stats = SnapshotStatsProvider(corpus).stats(name)
    project = corpus.get(name)
    return Popularity(
        name=name,
        monthly=stats.last_month if stats is not None else None,
        rank=project.rank if project is not None and stats is not None else None,
        floor=floor,
        listed_projects=size,
    )


def _floor(corpus: Any) -> tuple[int | None, int]:
    """The smallest listed count and how many have counts, once per corpus (it is read-only)."""
    key = id(corpus)
    with _FLOORS_LOCK:
        cached = _FLOORS.get(key)
    if cached is not None:
        return cached
    counts = [p.downloads for p in corpus if p.downloads is not None and p.alias_of is None]
    result = (min(counts) if counts else None, len(counts))
    with _FLOORS_LOCK:
        _FLOORS[key] = result
    return result
