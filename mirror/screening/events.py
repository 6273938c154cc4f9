"""Recording events an operator must be able to find later."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mirror.clock import Clock
from mirror.db.models import Event, PinnedFile

log = logging.getLogger("indexguard.events")


def record_event(
    session: Session,
    *,
    severity: str,
    kind: str,
    message: str,
    project: str | None = None,
    filename: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    event = Event(
        at=at or datetime.now(timezone.utc),
        severity=severity,
        kind=kind,
        project=project,
        filename=filename,
        message=message,
        details=details or {},
    )
    session.add(event)
    level = logging.CRITICAL if severity == "critical" else logging.WARNING
    log.log(level, "%s: %s", kind, message)
    return event


def record_hash_mismatch(sessions: sessionmaker[Session], clock: Clock, sha256: str, url: str, actual: str) -> None:
    """A critical event: upstream sent bytes that do not match a pin (a swapped file, or a broken cache)."""
    with sessions.begin() as session:
        pin = session.scalars(
            select(PinnedFile).where((PinnedFile.sha256 == sha256) | (PinnedFile.metadata_sha256 == sha256))
        ).first()
        record_event(
            session,
            severity="critical",
            kind="hash-mismatch",
            project=pin.project if pin else None,
            filename=pin.filename if pin else None,
            message=f"upstream bytes do not match the pinned sha256 {sha256} (got {actual})",
            details={"expected": sha256, "actual": actual},
            at=clock(),
        )
