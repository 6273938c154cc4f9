"""Release lists as a reviewer reads them: newest version first, a page at a time, held ones grouped.

Versions are ordered by PEP 440 (``packaging.version``), not as text, so
3.57.0 comes before 3.9.0 when newest is first.  A version PEP 440 cannot
parse sorts after every valid one, by its text, so it is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, TypeVar

from packaging.version import InvalidVersion, Version

from mirror.review.schemas import QueueRelease

T = TypeVar("T")


def version_key(version: str) -> tuple[int, Version | str]:
    """Sort key, ascending: valid versions by PEP 440, then unparsable ones by text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def newest_first(releases: Iterable[T], version: str = "version") -> list[T]:
    """``releases`` (objects with a version attribute) newest first."""
    return sorted(releases, key=lambda r: version_key(getattr(r, version)), reverse=True)


@dataclass(frozen=True)
class Window:
    """One page of a longer list, with where the neighbouring pages start."""

    items: list
    total: int
    offset: int
    size: int

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.size) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.size if self.offset + self.size < self.total else None

    @property
    def first(self) -> int:
        return self.offset + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.offset + len(self.items)


def window(items: Sequence[T], offset: int, size: int) -> Window:
    """Items ``offset`` .. ``offset + size``; an offset past the end shows the last page."""
    total = len(items)
    offset = max(0, min(offset, max(0, total - 1)))
    offset -= offset % size if size else 0
    return Window(items=list(items[offset : offset + size]), total=total, offset=offset, size=size)


@dataclass(frozen=True)
class HeldGroup:
    """One project's held releases, newest first: the unit of "approve all up to version V"."""

    project: str
    releases: list[QueueRelease]

    @property
    def newest(self) -> str:
        return self.releases[0].version

    @property
    def oldest(self) -> str:
        return self.releases[-1].version


def group_held(releases: Iterable[QueueRelease]) -> list[HeldGroup]:
    """Held releases by project; the project waiting longest first, as in the queue."""
    grouped: dict[str, list[QueueRelease]] = {}
    for release in releases:
        grouped.setdefault(release.project, []).append(release)
    groups = [HeldGroup(project, newest_first(items)) for project, items in grouped.items()]
    groups.sort(key=lambda g: (min(r.decided_at for r in g.releases), g.project))
    return groups


def up_to(releases: Iterable[T], version: str) -> list[T]:
    """The releases whose version is at most ``version`` (PEP 440); raises InvalidVersion for a bad one."""
    limit = Version(version)
    chosen = []
    for release in releases:
        try:
            if Version(getattr(release, "version")) <= limit:
                chosen.append(release)
        except InvalidVersion:
            continue
    return chosen
