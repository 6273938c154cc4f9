"""The shapes the admin API reads and writes, which FastAPI turns into its OpenAPI document.

A reason is required for every change of state and may not be blank: an
auditor reading the log a year later needs the why, not just the who.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mirror.review.actions import MAX_BREAK_GLASS_HOURS
from mirror.states import ROLES

MAX_REASON = 2000


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FindingOut(_Out):
    id: int
    project: str
    version: str | None
    detector: str
    severity: str
    title: str
    target: str | None
    evidence: dict[str, Any]
    found_at: datetime
    resolved_at: datetime | None


class DecisionOut(_Out):
    id: int
    project: str
    version: str | None
    action: str
    actor: str
    reason: str
    at: datetime
    expires_at: datetime | None
    undone_by: int | None
    request: dict[str, Any]


class ReleaseOut(_Out):
    version: str
    state: str
    blocked: bool
    reason: str
    upload_time: datetime | None
    held_until: datetime | None
    decided_by: str
    decided_at: datetime


class BlockedFileOut(_Out):
    filename: str
    version: str | None
    sha256: str = Field(description="the pinned sha256: the bytes served once the block is cleared")
    blocked_reason: str
    listed_sha256: str | None = Field(
        None, description="what the mirror's latest copy of the upstream page lists for this file (null: not listed)"
    )


class EventOut(_Out):
    id: int
    at: datetime
    severity: str
    kind: str
    project: str | None
    filename: str | None
    message: str
    details: dict[str, Any]


class ProjectOut(BaseModel):
    name: str
    source: str
    state: str = Field(description="stored state: allowed, quarantined or denied")
    effective_state: str = Field(description="the state that applies now (an unexpired break-glass allow wins)")
    reason: str
    decided_by: str
    decided_at: datetime
    first_seen: datetime
    allow_until: datetime | None
    findings: dict[str, int] = Field(description="number of open findings per severity")
    top_findings: list[str] = Field(description="titles of the most severe open findings")
    clients_refused: int = Field(
        0, description="distinct client addresses refused this project within the retention period "
        "([review] refusals_retention_days); a floor when clients_refused_more is true",
    )
    clients_refused_more: bool = Field(False, description="more clients were refused than are counted one by one")


class RefusedClientOut(_Out):
    """A client refused this project: how often, when last, and what it said it was."""

    client: str = Field(description="the client's address ('*': the clients past the per-project cap)")
    count: int = Field(description="refused requests")
    first_seen: datetime
    last_seen: datetime
    version: str | None = Field(description="the release the last refused request asked for, if any")
    filename: str | None = Field(description="the file the last refused request asked for, if any")
    installer: str | None
    python: str | None
    system: str | None
    ci: bool | None


class ProjectList(BaseModel):
    items: list[ProjectOut]
    total: int
    limit: int
    offset: int


class QueueRelease(BaseModel):
    project: str
    version: str
    state: str
    reason: str
    upload_time: datetime | None
    held_until: datetime | None
    decided_by: str
    decided_at: datetime


class QueueCounts(BaseModel):
    projects: int
    releases: int


class Queue(BaseModel):
    counts: QueueCounts
    projects: list[ProjectOut] = Field(description="quarantined projects, longest waiting first")
    releases: list[QueueRelease] = Field(description="held releases, longest waiting first")


class History(BaseModel):
    project: ProjectOut
    requested: dict[str, Any] | None = Field(description="the request that triggered the first screening")
    findings: list[FindingOut]
    decisions: list[DecisionOut] = Field(description="newest first")
    releases: list[ReleaseOut]
    events: list[EventOut] = Field(description="newest first")
    snapshot: dict[str, Any] | None = Field(description="the latest ownership facts")
    refused_clients: list[RefusedClientOut] = Field(
        default_factory=list, description="the clients refused most recently, newest first (a few)"
    )


class AuditEntry(BaseModel):
    type: Literal["decision", "event"]
    id: int
    at: datetime
    project: str | None
    version: str | None = None
    action: str = Field(description="the decision's action, or the event's kind")
    actor: str = Field(description="who decided (token name or 'policy'); 'system' for events")
    reason: str = Field(description="the decision's reason, or the event's message")
    severity: str | None = None
    expires_at: datetime | None = None
    undone_by: int | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def _clean_reason(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a reason is required")
    return value


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="why; required, recorded in the audit log")

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        return _clean_reason(value)


class AllowIn(DecisionIn):
    expires_at: datetime | None = Field(
        None, description=f"break-glass: allow only until this time (at most {MAX_BREAK_GLASS_HOURS} hours ahead)"
    )
    hours: float | None = Field(
        None, gt=0, description=f"break-glass: allow for this many hours (at most {MAX_BREAK_GLASS_HOURS})"
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> AllowIn:
        if self.expires_at is not None and self.hours is not None:
            raise ValueError("give expires_at or hours, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
        return self


class UndoIn(DecisionIn):
    pass


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: Literal[ROLES]  # type: ignore[valid-type]  # one list of roles: mirror.states


class TokenOut(_Out):
    name: str
    role: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only now, store it safely")


class Principal(BaseModel):
    name: str
    role: str
