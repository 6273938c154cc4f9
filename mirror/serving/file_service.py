"""Which blob a file URL names, and whether it may be served now.

A file URL carries the distribution's sha256 and name; the core metadata
(PEP 658) and provenance (PEP 740) of a file are addressed by suffixes of
that name.  Every answer passes the gate with the project's standing and
the release's state at this moment.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from mirror.db.models import PinnedFile
from mirror.errors import NotFound
from mirror.memory import release_free_memory
from mirror.screening.content import ContentScreening, FileToScan, file_to_scan
from mirror.screening.screen import Screening
from mirror.serving.gate import Standing, check_file
from mirror.serving.pagebuild import PROVENANCE_SUFFIX, derives_metadata
from mirror.serving.pages import RECHECK_SECONDS
from mirror.serving.provenance import ProvenanceStore
from mirror.serving.store import BlobStore
from mirror.simple.metadata import wheel_metadata

METADATA_SUFFIX = ".metadata"  # PEP 658: a file's core metadata beside it
UNFETCHED = "unfetched"  # a provenance upstream lists that the mirror has not fetched yet
UNDERIVED = "underived"  # core metadata the mirror reads out of the wheel, not read yet
_MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class FileTarget:
    """A blob to serve: its hash, where upstream has it, and its size if known.

    ``needs_scan``: content screening has not looked at this distribution
    file under today's rules, so it is scanned before its last byte is sent.
    """

    sha256: str
    upstream_url: str
    size: int | None
    is_metadata: bool
    project: str
    filename: str
    version: str = ""
    needs_scan: bool = False


def first_owner(blob: str) -> Select[tuple[str]]:
    """The project whose file first brought ``blob`` into the store (as dist, metadata or provenance).

    Asked on every file request: each of the three hashes has an index, so
    this is three index lookups, never a scan of every pinned file.
    """
    return (
        select(PinnedFile.project)
        .where(
            (PinnedFile.sha256 == blob)
            | (PinnedFile.metadata_sha256 == blob)
            | (PinnedFile.provenance_sha256 == blob)
        )
        .order_by(PinnedFile.id)
        .limit(1)
    )


class FileService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        standing: Callable[[str], Standing],
        screening: Screening,
        content: ContentScreening | None,
        provenance: ProvenanceStore,
        monotonic: Callable[[], float],
        store: BlobStore,
        blob_path: Callable[[FileToScan], Path],
        derive_metadata_from: int | None,
        max_metadata_bytes: int,
        wait_for_stores: Callable[[], bool] = lambda: False,
    ) -> None:
        self.sessions = sessions
        # A page may reach a client before its pins are committed (``PageProcess``): a miss waits for them.
        self.wait_for_stores = wait_for_stores
        self.store = store
        self.blob_path = blob_path  # the verified file, fetched into the store if needed
        # [upstream] derive_metadata(_min_bytes) / max_metadata_bytes: core metadata read out of
        # wheels upstream gives none for (``derives_metadata``).
        self.derive_metadata_from = derive_metadata_from
        self.max_metadata_bytes = max_metadata_bytes
        self.standing = standing
        self.screening = screening
        self.content = content
        self.provenance = provenance
        self.monotonic = monotonic
        # (sha256, filename) -> (when allowed, target): the warm file path.
        self._allowed: dict[tuple[str, str], tuple[float, FileTarget]] = {}

    def warm(self, sha256: str, filename: str) -> FileTarget | None:
        """A target when memory alone can answer: allowed within the last RECHECK_SECONDS.

        The warm path costs no database read and no thread hop; a decision
        taken in another process still shows within seconds.
        """
        hit = self._allowed.get((sha256, filename))
        if hit is None or self.monotonic() - hit[0] >= RECHECK_SECONDS:
            return None
        return hit[1]

    def forget(self, project: str) -> None:
        """End the warm path for ``project``'s files at once (a decision was taken)."""
        for key, (_, target) in list(self._allowed.items()):
            if target.project == project:
                self._allowed.pop(key, None)

    def target(self, sha256: str, filename: str) -> FileTarget:
        """The blob to serve for a file URL; raises NotFound or Refused."""
        target = self._target(sha256, filename)
        if target.needs_scan or target.sha256 == UNDERIVED:
            return target  # not for the warm path until it was looked at (or read out)
        if len(self._allowed) > _MAX_REMEMBERED:
            self._allowed.clear()
        self._allowed[(sha256, filename)] = (self.monotonic(), target)
        return target

    def screen(self, target: FileTarget) -> None:
        """Scan a distribution file before it is served (fetching it into the store if needed).

        The scan may hold or deny its release: ask ``target`` again afterwards.
        """
        if self.content is not None:
            self.content.ensure_screened(
                FileToScan(target.project, target.version, target.filename, target.sha256, target.upstream_url, target.size)
            )
            release_free_memory()  # a wheel's members were decompressed and scanned in memory

    def provenance_target(self, sha256: str, filename: str) -> FileTarget:
        """The mirror's copy of a file's provenance (fetched now if needed); raises like ``target``."""
        target = self.target(sha256, filename)
        dist_name = target.filename.removesuffix(PROVENANCE_SUFFIX)
        self.provenance.of(FileToScan(target.project, target.version, dist_name, sha256, target.upstream_url, None))
        return self._target(sha256, filename)

    def derived_metadata_target(self, sha256: str, filename: str) -> FileTarget:
        """The core metadata of a wheel upstream gives none for, read out of the verified wheel now.

        Its hash is pinned as the file's metadata hash at the first read, so
        later pages state it and every later copy must match it.  Raises
        NotFound when the wheel holds no METADATA or one over the cap.
        """
        target = self.target(sha256, filename)
        if target.sha256 != UNDERIVED:
            return target  # another request read it out first
        dist_name = filename.removesuffix(METADATA_SUFFIX)
        wheel = self.blob_path(FileToScan(target.project, target.version, dist_name, sha256, target.upstream_url, None))
        try:
            data = wheel_metadata(wheel, self.max_metadata_bytes, setting="[upstream] max_metadata_bytes")
        except ValueError as exc:
            raise NotFound(f"no core metadata for '{target.filename}': {exc}.") from None
        if data is None:
            raise NotFound(f"no core metadata for '{target.filename}': the wheel holds no METADATA.")
        metadata_sha256, _ = self.store.put_stream(io.BytesIO(data))
        with self.sessions.begin() as session:
            session.execute(
                update(PinnedFile)
                .where(PinnedFile.sha256 == sha256, PinnedFile.filename == dist_name, PinnedFile.metadata_sha256.is_(None))
                .values(metadata_sha256=metadata_sha256)
            )
        return self.target(sha256, filename)

    def _target(self, sha256: str, filename: str) -> FileTarget:
        try:
            return self._target_now(sha256, filename)
        except NotFound:
            if not self.wait_for_stores():
                raise
        return self._target_now(sha256, filename)

    def _target_now(self, sha256: str, filename: str) -> FileTarget:
        is_metadata = filename.endswith(METADATA_SUFFIX)
        is_provenance = filename.endswith(PROVENANCE_SUFFIX)
        dist_name = filename.removesuffix(METADATA_SUFFIX).removesuffix(PROVENANCE_SUFFIX)
        with self.sessions() as session:
            pin = session.scalars(
                select(PinnedFile).where(PinnedFile.sha256 == sha256, PinnedFile.filename == dist_name)
            ).first()
            blob = sha256
            if pin is not None and is_metadata:
                blob = pin.metadata_sha256 or (
                    UNDERIVED if derives_metadata(pin.filename, pin.size, self.derive_metadata_from) else "")
            elif pin is not None and is_provenance:
                blob = pin.provenance_sha256 or ("" if not pin.provenance_url else UNFETCHED)
            if pin is None or not blob:
                raise NotFound("no such file.")
            owner = session.scalars(first_owner(blob)).first() if blob != UNDERIVED else None
        check_file(pin, self.standing(pin.project), self.screening.release_state(pin.project, pin.version), owner)
        version = pin.version or ""
        if is_provenance:  # read, never run; UNFETCHED until provenance_target fetched it
            return FileTarget(blob, pin.provenance_url or "", None, True, pin.project, filename, version)
        if is_metadata:  # core metadata is read, never run: it needs no content scan
            if self.content is not None and blob != UNDERIVED:  # reading it out fetches the wheel first
                self.content.prefetch(file_to_scan(pin))
            url = pin.upstream_url if blob == UNDERIVED else pin.upstream_url + METADATA_SUFFIX
            return FileTarget(blob, url, None, True, pin.project, filename, version)
        needs_scan = self.content is not None and not self.content.has_scan(pin.sha256)
        return FileTarget(pin.sha256, pin.upstream_url, pin.size, False, pin.project, filename, version, needs_scan)
