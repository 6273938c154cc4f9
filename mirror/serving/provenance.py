"""PEP 740 provenance documents: fetched from upstream once, then kept in the store."""

from __future__ import annotations

import io

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mirror.db.models import PinnedFile
from mirror.screening.content import FileToScan, Provenance
from mirror.serving.store import BlobStore
from mirror.upstream.client import UpstreamClient


class ProvenanceStore:
    """The provenance of a pinned file, for content screening and for clients.

    A file's provenance is fetched at most once: its sha256 is pinned beside
    the file, so later reads come from the store and a changed upstream copy
    is never picked up silently.
    """

    def __init__(self, sessions: sessionmaker[Session], store: BlobStore, upstream: UpstreamClient) -> None:
        self.sessions = sessions
        self.store = store
        self.upstream = upstream

    def of(self, item: FileToScan) -> Provenance:
        """The document (None when upstream has none), and whether the project publishes any."""
        with self.sessions.begin() as session:
            # Two questions for the database, not every pin of the project loaded (numpy: 4,415
            # per scanned file, an eighth of a cold install's server time).
            pin = session.scalars(
                select(PinnedFile).where(
                    PinnedFile.project == item.project,
                    PinnedFile.sha256 == item.sha256,
                    PinnedFile.filename == item.filename,
                )
            ).first()
            known = session.scalar(
                select(PinnedFile.id)
                .where(PinnedFile.project == item.project, PinnedFile.provenance_url.is_not(None),
                       PinnedFile.provenance_url != "")
                .limit(1)
            ) is not None
            if pin is None or not pin.provenance_url:
                return Provenance(None, known)
            if pin.provenance_sha256 and self.store.has(pin.provenance_sha256):
                return Provenance(self.store.path(pin.provenance_sha256).read_bytes(), True)
            document = self.upstream.fetch_provenance(pin.provenance_url)
            if document is not None:
                pin.provenance_sha256, _ = self.store.put_stream(io.BytesIO(document))
            return Provenance(document, True)
