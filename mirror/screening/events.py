"""Recording events an operator must be able to find later."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from mirror.db.models import Event

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
