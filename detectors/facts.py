"""The values that go into the detectors (the findings that come out: ``detectors.findings``).

Detectors are pure functions of these values: everything they would otherwise
fetch (upstream metadata, download counts, the clock) arrives here, so every
rule can be tested with plain data and replayed later from stored facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detectors.corpus import NameIndex, PopularCorpus, Project
from detectors.findings import Finding, Severity
from detectors.names import canonical, canonical_pattern

__all__ = [
    "DownloadStats",
    "Finding",
    "InternalNames",
    "ProjectFacts",
    "ProjectMetadata",
    "ReleaseFacts",
    "Severity",
]


@dataclass(frozen=True)
class DownloadStats:
    """Recent download counts of one project.

    Each count is ``None`` when the source did not say: an unknown count must
    never be read as zero, or every project missing from a statistics service
    would look abandoned (or, worse, a young project would look harmless).
    """

    last_day: int | None = None
    last_week: int | None = None
    last_month: int | None = None

    def __post_init__(self) -> None:
        for label in ("last_day", "last_week", "last_month"):
            value = getattr(self, label)
            if value is not None and value < 0:
                raise ValueError(f"{label} must be >= 0 or None, got {value}")

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.last_day, self.last_week, self.last_month))


@dataclass(frozen=True)
class InternalNames:
    """The organisation's own project names and glob patterns (e.g. ``acme-*``).

    Built once from configuration and internal sources, then shared by every
    check: its similarity index is the expensive part.
    """

    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    index: NameIndex | None = None

    @classmethod
    def build(cls, names: Any = (), patterns: Any = ()) -> InternalNames:
        """Canonicalise ``names`` (raising ``InvalidName`` for bad ones) and index them."""
        canon = frozenset(canonical(n) for n in names)
        pats = tuple(canonical_pattern(p) for p in patterns if p.strip())
        # No two-typo search for internal names: they share prefixes
        # ('acme-...'), which defeats the first/last-letter buckets, and one
        # edit, look-alikes, affixes and patterns already cover them.
        index = NameIndex((Project(name=n, kind="internal") for n in sorted(canon)), two_edit_min_length=10**6)
        return cls(names=canon, patterns=pats, index=index)


@dataclass(frozen=True)
class ProjectMetadata:
    """What a project says about itself upstream: the text an impersonator copies.

    Every value is the project's own (attacker-controlled) text except
    ``owners`` and ``organization``, which the index itself reports (its
    ownership table) and which therefore cannot be faked.  ``None`` is unknown, never empty:
    ``owners=None`` means the index does not say, ``frozenset()`` that it
    says nobody.
    """

    summary: str | None = None
    description: str | None = None
    home_page: str | None = None
    project_urls: Mapping[str, str] = field(default_factory=dict)
    author: str | None = None
    author_email: str | None = None
    owners: frozenset[str] | None = None
    organization: str | None = None


@dataclass(frozen=True)
class ProjectFacts:
    """Everything known about one requested project at one moment.

    Upstream facts are ``None`` when unknown (not fetched, or the project does
    not exist upstream); detectors skip rules whose facts are missing rather
    than guessing.  ``now`` is injected so that ages and cooldowns are
    reproducible and no detector reads the clock.
    """

    name: str
    now: datetime
    internal: InternalNames = field(default_factory=InternalNames)
    corpus: PopularCorpus | None = None
    exists_upstream: bool | None = None
    first_upload: datetime | None = None
    release_uploads: Mapping[str, datetime] = field(default_factory=dict)
    roles: Mapping[str, str] | None = None
    previous_roles: Mapping[str, str] | None = None
    emails: frozenset[str] | None = None
    previous_emails: frozenset[str] | None = None
    ownership_changed_at: datetime | None = None
    downloads: DownloadStats | None = None
    # The project's own words upstream (None: no project JSON), and those of
    # the projects its name resembles, by canonical name (a name missing: unknown).
    metadata: ProjectMetadata | None = None
    target_metadata: Mapping[str, ProjectMetadata] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseFacts:
    """One release of a project, for the per-release detectors (cooldown, ownership)."""

    project: str
    version: str
    uploaded_at: datetime | None
    now: datetime
    ownership_changed_at: datetime | None = None
