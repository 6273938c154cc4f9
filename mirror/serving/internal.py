"""Internal packages: the dependency-confusion defence.

An internal name is served only from internal sources (a directory of
distributions, uploads through the legacy upload API, a private index) and is
never merged with, nor falls back to, the public index, whatever versions the
public index shows.  The pages say so in PEP 708 terms: they track nothing,
and list only our own location as an alternate, so a PEP 708-aware installer
that also sees the public index refuses to merge the two.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Mapping

from packaging.utils import canonicalize_name
from pydantic import AfterValidator, BeforeValidator, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from detectors.facts import InternalNames
from mirror.clock import Clock
from mirror.db.models import PinnedFile
from mirror.serving.pagebuild import mirror_file_url
from mirror.simple.filenames import parse_dist_filename
from mirror.simple.metadata import wheel_metadata
from mirror.config import HttpUrlText, Section, section_from_mapping
from mirror.screening.patterns import canonical_patterns, name_matches
from mirror.simple.model import DistFile, ProjectPage
from mirror.serving.store import BlobStore
from mirror.upstream.client import NOT_FOUND, NOT_MODIFIED, Fetched, UpstreamClient
from mirror.upstream.errors import UpstreamError

log = logging.getLogger(__name__)

INTERNAL_URL_PREFIX = "internal:"
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")
CACHE_SECONDS = 5.0


def _directory(value: Any) -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a directory path, not {value!r}")
    return Path(value).expanduser() if value else None


# Canonical names or glob patterns (``canonical_patterns``), in the order written.
Patterns = Annotated[tuple[str, ...], AfterValidator(canonical_patterns)]


class InternalSettings(Section):
    """The ``[internal]`` table; the password and the upload token never show in a repr or an error."""

    names: Patterns = ()
    patterns: Patterns = ()
    directory: Annotated[Path | None, BeforeValidator(_directory)] = None
    index_url: HttpUrlText = Field("", repr=False)  # may carry user:password@
    username: str = ""
    password: str = Field("", repr=False)
    upload_token: str = Field("", repr=False)
    # An upload may only add files to a configured internal name or pattern
    # (or a name an internal source already has); true also lets an upload
    # create a new internal name, which then shadows any public project.
    upload_creates_names: bool = False
    # Largest upload request accepted by /legacy/, in bytes (413 beyond).
    max_upload_bytes: int = Field(1024 * 1024 * 1024, ge=1024)
    # Largest METADATA read out of an internal wheel, uncompressed (a zip bomb
    # must not decide how much memory a read takes).
    max_metadata_bytes: int = Field(16 * 1024 * 1024, ge=1024)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> InternalSettings:
        return section_from_mapping(cls, "internal", raw)


@dataclass
class _Cached:
    at: float
    page: ProjectPage | None


@dataclass
class InternalSources:
    settings: InternalSettings
    sessions: sessionmaker[Session]
    store: BlobStore
    clock: Clock
    private: UpstreamClient | None = None
    monotonic: Callable[[], float] = time.monotonic
    _pages: dict[str, _Cached] = field(default_factory=dict)
    _scanned: dict[Path, tuple[float, int]] = field(default_factory=dict)
    _private_names: tuple[float, frozenset[str]] = (0.0, frozenset())
    _source_names: tuple[float, frozenset[str]] = (0.0, frozenset())
    _names_index: tuple[frozenset[str], InternalNames] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _source_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- names ---------------------------------------------------------------

    def matches_config(self, name: str) -> bool:
        """Configured names and patterns only, in any spelling: cheap, no I/O."""
        return name_matches(name, self.settings.names, self.settings.patterns)

    def is_internal(self, name: str) -> bool:
        """Configured, or found in an internal source (directory, uploads, private index)."""
        if self.matches_config(name):
            return True
        return canonicalize_name(name) in self.source_names()

    def all_names(self) -> frozenset[str]:
        return frozenset(self.settings.names) | self.source_names()

    def names_index(self) -> InternalNames:
        """Every internal name and pattern as the detectors take them, rebuilt only when the names change."""
        names = self.all_names()
        if self._names_index is None or self._names_index[0] != names:
            self._names_index = (names, InternalNames.build(names, self.settings.patterns))
        return self._names_index[1]

    def source_names(self) -> frozenset[str]:
        """Names found in internal sources; re-read at most every few seconds (hot path)."""
        at, names = self._source_names
        if at and self.monotonic() - at < CACHE_SECONDS:
            return names
        with self._source_lock:  # clients arriving together read the sources once, not once each
            at, names = self._source_names
            if at and self.monotonic() - at < CACHE_SECONDS:
                return names
            names = self._read_source_names()
            self._source_names = (self.monotonic(), names)
            return names

    def _read_source_names(self) -> frozenset[str]:
        self.scan_directory()
        with self.sessions() as session:
            local = set(
                session.scalars(
                    select(PinnedFile.project).where(
                        PinnedFile.upstream_url.startswith(INTERNAL_URL_PREFIX)
                    )
                )
            )
        return frozenset(local) | self._private_index_names()

    # -- pages -----------------------------------------------------------------

    def page(self, name: str) -> ProjectPage | None:
        """The internal page for ``name``; None when no internal source has files for it."""
        now = self.monotonic()
        cached = self._pages.get(name)
        if cached is not None and now - cached.at < CACHE_SECONDS:
            return cached.page
        self.scan_directory()
        files: dict[str, DistFile] = {}
        with self.sessions() as session:
            for pin in session.scalars(
                select(PinnedFile).where(
                    PinnedFile.project == name,
                    PinnedFile.upstream_url.startswith(INTERNAL_URL_PREFIX),
                )
            ):
                files[pin.filename] = _pinned_dist(pin)
        files.update({f.filename: f for f in self._private_files(name) if f.filename not in files})
        page = None
        if files:
            ordered = tuple(sorted(files.values(), key=lambda f: f.filename))
            versions = sorted({v for f in ordered if (v := f.version)})
            page = ProjectPage(
                name=name,
                files=ordered,
                versions=tuple(versions),
                alternate_locations=(f"../{name}/",),
            )
        self._pages[name] = _Cached(now, page)
        return page

    def forget(self, name: str) -> None:
        self._pages.pop(name, None)
        self._source_names = (0.0, frozenset())

    # -- directory source --------------------------------------------------------

    def scan_directory(self) -> None:
        """Ingest new or changed files of the internal directory into the store."""
        directory = self.settings.directory
        if directory is None or not directory.is_dir():
            return
        with self._lock:
            for path in sorted(directory.iterdir()):
                if not path.name.endswith(DIST_SUFFIXES) or not path.is_file():
                    continue
                stat = path.stat()
                key = (stat.st_mtime, stat.st_size)
                if self._scanned.get(path) == key:
                    continue
                try:
                    with path.open("rb") as f:
                        self.add_file(path.name, f, source=f"directory:{path.name}")
                except (ValueError, OSError) as exc:
                    log.warning("skipping internal file %s: %s", path.name, exc)
                self._scanned[path] = key

    # -- adding files (directory and uploads) -------------------------------------

    def add_file(
        self,
        filename: str,
        stream: io.BufferedIOBase | Any,
        *,
        source: str,
        expected_sha256: str | None = None,
        requires_python: str | None = None,
    ) -> PinnedFile:
        """Store an internal distribution by hash and pin it.

        Raises ValueError for a bad filename, a hash mismatch, or a filename
        already pinned with other bytes (published files are immutable).
        """
        parsed = parse_dist_filename(filename)
        if parsed is None or "/" in filename or "\\" in filename:
            raise ValueError(f"not a valid wheel or sdist filename: {filename!r}")
        project, version = parsed
        existing = self._pin(project, filename)
        sha256, size = self.store.put_stream(stream)
        if expected_sha256 and expected_sha256.lower() != sha256:
            raise ValueError("sha256_digest does not match the uploaded bytes")
        if existing is not None:
            if existing.sha256 != sha256:
                raise ValueError(f"{filename} already exists with different contents")
            return existing
        metadata_sha256 = None
        if filename.endswith(".whl"):
            metadata = wheel_metadata(self.store.path(sha256), self.settings.max_metadata_bytes,
                                      setting="[internal] max_metadata_bytes")
            if metadata is not None:
                metadata_sha256 = hashlib.sha256(metadata).hexdigest()
                self.store.put_stream(io.BytesIO(metadata))
                if requires_python is None:
                    requires_python = BytesParser().parsebytes(metadata).get("Requires-Python")
        pin = PinnedFile(
            project=project,
            filename=filename,
            version=version,
            sha256=sha256,
            size=size,
            upstream_url=f"{INTERNAL_URL_PREFIX}{source}",
            metadata_sha256=metadata_sha256,
            upload_time=self.clock(),
            first_seen=self.clock(),
            requires_python=requires_python,
        )
        try:
            with self.sessions.begin() as session:
                session.add(pin)
        except IntegrityError:
            existing = self._pin(project, filename)
            if existing is None or existing.sha256 != sha256:
                raise ValueError(f"{filename} already exists with different contents") from None
            return existing
        self.forget(project)
        return pin

    def _pin(self, project: str, filename: str) -> PinnedFile | None:
        with self.sessions() as session:
            return session.scalars(
                select(PinnedFile).where(PinnedFile.project == project, PinnedFile.filename == filename)
            ).first()

    # -- private index source ----------------------------------------------------

    def _private_index_names(self) -> frozenset[str]:
        if self.private is None:
            return frozenset()
        at, names = self._private_names
        if self.monotonic() - at < 60 and at:
            return names
        try:
            names = frozenset(self.private.fetch_project_list())
        except UpstreamError as exc:
            log.warning("private index list unavailable: %s", exc)
        self._private_names = (self.monotonic(), names)
        return names

    def _private_files(self, name: str) -> Iterable[DistFile]:
        if self.private is None:
            return ()
        try:
            result = self.private.fetch_project(name)
        except UpstreamError as exc:
            log.warning("private index unavailable for %s: %s", name, exc)
            return ()
        if result is NOT_FOUND or result is NOT_MODIFIED:
            return ()
        assert isinstance(result, Fetched)
        files = []
        for f in result.page.files:
            sha256 = f.hashes.get("sha256")
            if not sha256:
                continue
            pin = self._pin_private(name, f, sha256.lower())
            if pin is not None:
                files.append(_pinned_dist(pin, yanked=f.yanked))
        return files

    def _pin_private(self, project: str, f: DistFile, sha256: str) -> PinnedFile | None:
        existing = self._pin(project, f.filename)
        if existing is not None:
            return existing if existing.sha256 == sha256 and not existing.blocked_reason else None
        metadata = f.core_metadata.get("sha256") if isinstance(f.core_metadata, Mapping) else None
        pin = PinnedFile(
            project=project,
            filename=f.filename,
            version=f.version,
            sha256=sha256,
            size=f.size,
            upstream_url=f.url,
            metadata_sha256=metadata,
            upload_time=None,
            first_seen=self.clock(),
            requires_python=f.requires_python,
        )
        try:
            with self.sessions.begin() as session:
                session.add(pin)
        except IntegrityError:
            return self._pin(project, f.filename)
        return pin


def _pinned_dist(pin: PinnedFile, yanked: bool | str = False) -> DistFile:
    return DistFile(
        filename=pin.filename,
        url=mirror_file_url(pin.sha256, pin.filename),
        hashes={"sha256": pin.sha256},
        requires_python=pin.requires_python,
        yanked=yanked,
        size=pin.size,
        upload_time=_iso(pin.upload_time),
        core_metadata={"sha256": pin.metadata_sha256} if pin.metadata_sha256 else False,
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
