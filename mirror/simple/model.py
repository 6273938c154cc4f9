"""The mirror's own picture of a project page, independent of wire format.

Upstream pages (PEP 503 HTML or PEP 691 JSON) are parsed into these values,
filtered and rewritten by the mirror, stored, and rendered back to either
format.  Keeping one neutral model means the two wire formats can never
disagree about what a project contains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mirror.simple.filenames import file_version

# The highest Simple API version whose features we implement end to end:
# 1.1 PEP 700 (versions, size, upload-time), 1.2 PEP 708 (tracks,
# alternate-locations), 1.3 PEP 740 (provenance), 1.4 PEP 792 (project status).
API_VERSION = "1.4"


@dataclass(frozen=True)
class Skipped:
    """An upstream entry the parser refused, kept so the refusal can be logged.

    A single junk entry must not hide a project's real files, so parsers drop
    the entry and say why here instead of failing the whole page.
    """

    entry: str
    reason: str


@dataclass(frozen=True)
class DistFile:
    """One distribution file as listed on a project page."""

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    # PEP 592: False, or True / a non-empty reason string when yanked.
    yanked: bool | str = False
    # PEP 700
    size: int | None = None
    upload_time: str | None = None
    # PEP 658/714: False when absent, else the metadata file's hashes
    # (an empty mapping means "present, hash unknown").
    core_metadata: bool | Mapping[str, str] = False
    gpg_sig: bool | None = None
    # PEP 740: URL of the provenance object, when upstream publishes one.
    provenance: str | None = None
    # The version the filename carries, as the parser found it; derived from
    # ``filename``, so it takes no part in equality.
    parsed_version: str | None = field(default=None, compare=False, repr=False)

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def version(self) -> str | None:
        """The filename's version, parsed once: a big page lists tens of thousands of files."""
        return self.parsed_version if self.parsed_version is not None else file_version(self.filename)


@dataclass(frozen=True)
class ProjectPage:
    """A project's file list plus page-level metadata."""

    name: str
    files: tuple[DistFile, ...] = ()
    # PEP 700: every version upstream knows, including file-less ones.
    versions: tuple[str, ...] = ()
    # PEP 792: "active", "archived", "quarantined", "deprecated" or None.
    status: str | None = None
    status_reason: str | None = None
    # PEP 708 repository metadata.
    tracks: tuple[str, ...] = ()
    alternate_locations: tuple[str, ...] = ()
    # Upstream change counter (X-PyPI-Last-Serial), when given.
    last_serial: int | None = None
    # Entries the parser refused.  Not part of the page's identity: two pages
    # listing the same files are equal however much junk came with them.
    skipped: tuple[Skipped, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ProjectList:
    """The root index: every project name the index serves."""

    names: tuple[str, ...] = ()
    last_serial: int | None = None
    skipped: tuple[Skipped, ...] = field(default=(), compare=False)
