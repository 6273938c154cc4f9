"""Recording decisions on projects and releases, by the policy or a person.

One function changes state, so that every change leaves a Decision row with
who, why, when and what triggered it: a reviewer or an auditor can always
ask "why is this blocked?" and get an answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from packaging.utils import canonicalize_version
from sqlalchemy import select
from sqlalchemy.orm import Session

from mirror.states import PROJECT_STATE_OF_ACTION, RELEASE_STATE_OF_ACTION
from mirror.db.models import Decision, PinnedFile, Project, Release

# The action of a decision that cleared one file's block; it changes no
# project or release state, so undo and replay pass over it.
UNBLOCK_FILE = "unblock-file"


class DecisionError(ValueError):
    """The decision cannot be applied (unknown project, bad action, ...)."""


def decide_project(
    session: Session,
    *,
    project: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    expires_at: datetime | None = None,
    request: dict[str, Any] | None = None,
    source: str = "public",
) -> Decision:
    """Set a project's state: allow, review (quarantine) or deny.

    ``expires_at`` with ``allow`` is a break-glass allow: the project goes
    back to its previous blocked state when it passes.
    """
    if action not in PROJECT_STATE_OF_ACTION:
        raise DecisionError(f"unknown action {action!r}; use allow, review or deny")
    row = session.get(Project, project)
    if row is None:
        row = Project(name=project, source=source, first_seen=now)
        session.add(row)
        previous = None
    else:
        previous = row.state
    if expires_at is not None:
        if action != "allow":
            raise DecisionError("only an allow can expire (break-glass)")
        # Keep the blocked state underneath; the allow is a window over it.
        row.allow_until = expires_at
        if previous is None:
            row.state = "quarantined"
    else:
        row.state = PROJECT_STATE_OF_ACTION[action]
        row.allow_until = None
    row.reason = reason
    row.decided_by = actor
    row.decided_at = now
    decision = Decision(
        project=project,
        version=None,
        action=action if expires_at is None else "break-glass",
        actor=actor,
        reason=reason,
        at=now,
        expires_at=expires_at,
        request=request or {},
    )
    session.add(decision)
    session.flush()
    return decision


def decide_release(
    session: Session,
    *,
    project: str,
    version: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    held_until: datetime | None = None,
    upload_time: datetime | None = None,
    request: dict[str, Any] | None = None,
) -> Decision:
    """Set one release's state: allow, hold (until a time, or until reviewed) or deny."""
    if action not in RELEASE_STATE_OF_ACTION:
        raise DecisionError(f"unknown release action {action!r}; use allow, hold or deny")
    if session.get(Project, project) is None:
        raise DecisionError(f"unknown project {project!r}")
    row = session.scalars(
        select(Release).where(Release.project == project, Release.version == version)
    ).first()
    if row is None:
        row = Release(project=project, version=version, upload_time=upload_time)
        session.add(row)
    row.state = RELEASE_STATE_OF_ACTION[action]
    row.reason = reason
    row.held_until = held_until if action == "hold" else None
    row.decided_by = actor
    row.decided_at = now
    decision = Decision(
        project=project,
        version=version,
        action=action,
        actor=actor,
        reason=reason,
        at=now,
        expires_at=held_until,
        request=request or {},
    )
    session.add(decision)
    session.flush()
    return decision


def clear_file_block(
    session: Session,
    *,
    pin: PinnedFile,
    actor: str,
    reason: str,
    now: datetime,
    request: dict[str, Any] | None = None,
) -> Decision:
    """Serve a blocked file again; the Decision row keeps who, why and what the block was."""
    if not pin.blocked_reason:
        raise DecisionError(f"{pin.filename} is not blocked")
    info = {**(request or {}), "filename": pin.filename, "sha256": pin.sha256, "blocked_reason": pin.blocked_reason}
    pin.blocked_reason = None
    decision = Decision(
        project=pin.project,
        version=None,
        action=UNBLOCK_FILE,
        actor=actor,
        reason=reason,
        at=now,
        expires_at=None,
        request=info,
    )
    session.add(decision)
    session.flush()
    return decision


def effective_project_state(row: Project | None, now: datetime) -> str | None:
    """The state that applies now, honouring an unexpired break-glass allow."""
    if row is None:
        return None
    if row.allow_until is not None and now < row.allow_until:
        return "allowed"
    return row.state


def release_blocked(row: Release, now: datetime) -> bool:
    if row.state == "denied":
        return True
    if row.state == "held":
        return row.held_until is None or now < row.held_until
    return False


def find_release(session: Session, project: str, version: str) -> Release | None:
    """The release of ``project`` whose version equals ``version`` (PEP 440 normal forms).

    Releases are registered once per normal form, and a file names its
    version as its release does nearly always: so the exact spelling is one
    indexed lookup, asked on every file request, and only another spelling
    (``1.0`` for ``1.0.0``) reads the project's releases.
    """
    exact = session.scalars(select(Release).where(Release.project == project, Release.version == version)).first()
    if exact is not None:
        return exact
    wanted = canonicalize_version(version)
    for row in session.scalars(select(Release).where(Release.project == project)):
        if canonicalize_version(row.version) == wanted:
            return row
    return None

