"""Reviewer decisions: allow, deny, break-glass, undo, and clearing a blocked file.

State only ever changes through ``mirror.screening.decisions``, so each action leaves
a Decision row naming the reviewer and the reason.  The state a decision
replaced is kept in its ``request["previous"]``: undo then restores exactly
that, instead of guessing from history.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Mapping

from packaging.version import InvalidVersion, Version
from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from mirror.clock import parse_utc
from mirror.db.models import Decision, PinnedFile, Project, Release
from mirror.screening.decisions import UNBLOCK_FILE, clear_file_block, decide_project, decide_release, find_release
from mirror.states import ACTION_OF_PROJECT_STATE, PROJECT_STATE_OF_ACTION, RELEASE_STATE_OF_ACTION

# The longest break-glass allow, whoever asks (API or form): an emergency exit
# must close by itself within a month, or it is a silent permanent allow.
MAX_BREAK_GLASS_HOURS = 24 * 30

_RELEASE_ACTION = {"allowed": "allow", "held": "hold", "denied": "deny"}


class ReviewError(Exception):
    """A reviewer action cannot be done; ``status`` is the HTTP status that says why."""

    status = 400


class NotFound(ReviewError):
    status = 404


class Conflict(ReviewError):
    status = 409


def break_glass_expiry(now: datetime, hours: float) -> datetime:
    """When a break-glass allow of ``hours`` from ``now`` ends (for "allow for N hours").

    Only turns hours into a time; the upper bound is checked where every
    break-glass passes, in ``decide_on_project``.  A number too large for a
    date is refused with the same message as one merely over the bound.
    """
    if not math.isfinite(hours) or hours <= 0:
        raise ReviewError("break-glass hours must be a number more than 0")
    try:
        return now + timedelta(hours=hours)
    except OverflowError:
        raise ReviewError(_too_long()) from None


def _too_long() -> str:
    return f"a break-glass allow may last at most {MAX_BREAK_GLASS_HOURS} hours"


def decide_on_project(
    session: Session,
    *,
    project: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    expires_at: datetime | None = None,
    request: Mapping[str, Any] | None = None,
) -> Decision:
    """Allow (optionally until ``expires_at``: break-glass) or deny a project.

    A deny may name a project never screened (a pre-emptive block); an allow
    may not, because it would skip screening altogether.
    """
    if action not in ("allow", "deny"):
        raise ReviewError(f"unknown action {action!r}; use allow or deny")
    row = session.get(Project, project)
    if row is None and action == "allow":
        raise NotFound(f"'{project}' has not been screened yet; it can be denied in advance, not allowed")
    if expires_at is not None:
        if action != "allow":
            raise ReviewError("only an allow can expire (break-glass)")
        if expires_at <= now:
            raise ReviewError("a break-glass allow must expire in the future")
        if expires_at - now > timedelta(hours=MAX_BREAK_GLASS_HOURS):
            raise ReviewError(_too_long())
        if row is not None and row.state == "allowed":
            raise Conflict(f"'{project}' is already allowed; break-glass is for blocked projects")
    info = {**(request or {}), "previous": _project_snapshot(row)}
    return decide_project(
        session,
        project=project,
        action=action,
        actor=actor,
        reason=reason,
        now=now,
        expires_at=expires_at,
        request=info,
    )


def decide_on_release(
    session: Session,
    *,
    project: str,
    version: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    request: Mapping[str, Any] | None = None,
) -> Decision:
    """Allow or deny one release; a deny may name a version not seen yet."""
    if action not in ("allow", "deny"):
        raise ReviewError(f"unknown action {action!r}; use allow or deny")
    if session.get(Project, project) is None:
        raise NotFound(f"no screened project named '{project}'")
    row = find_release(session, project, version)
    if row is None:
        if action == "allow":
            raise NotFound(f"'{project}' has no release {version!r} on record")
        try:
            version = str(Version(version))
        except InvalidVersion:
            raise ReviewError(f"{version!r} is not a valid version") from None
    else:
        version = row.version
    info = {**(request or {}), "previous": _release_snapshot(row)}
    return decide_release(
        session,
        project=project,
        version=version,
        action=action,
        actor=actor,
        reason=reason,
        now=now,
        request=info,
    )


def blocked_files(session: Session, project: str) -> list[PinnedFile]:
    """The project's pinned files that are not served, whatever blocked them."""
    return list(
        session.scalars(
            select(PinnedFile)
            .where(PinnedFile.project == project, PinnedFile.blocked_reason.is_not(None))
            .order_by(PinnedFile.filename)
        )
    )


def unblock_file(
    session: Session,
    *,
    project: str,
    filename: str,
    actor: str,
    reason: str,
    now: datetime,
    listed_sha256: str | None,
    request: Mapping[str, Any] | None = None,
) -> Decision:
    """Clear one file's block (a re-upload, say) after a reviewer looked at it.

    ``listed_sha256`` is what the mirror's latest copy of the upstream page
    lists for the file (None: not listed).  While upstream still lists other
    bytes than the pinned ones, clearing is refused: the next page build
    would only block the file again.  Once upstream reverts, or drops the
    file, the pinned bytes - the ones lockfiles hold - are served again.
    """
    pin = session.scalars(
        select(PinnedFile).where(PinnedFile.project == project, PinnedFile.filename == filename)
    ).first()
    if pin is None:
        raise NotFound(f"'{project}' has no pinned file {filename!r}")
    if not pin.blocked_reason:
        raise Conflict(f"{filename} is not blocked")
    if listed_sha256 is not None and listed_sha256.lower() != pin.sha256:
        raise Conflict(
            f"upstream still lists {filename} with sha256 {listed_sha256.lower()}, not the pinned {pin.sha256}; "
            "clear the block once upstream lists the original bytes again"
        )
    return clear_file_block(session, pin=pin, actor=actor, reason=reason, now=now, request=dict(request or {}))


def undo(
    session: Session,
    *,
    decision_id: int,
    actor: str,
    reason: str,
    now: datetime,
    request: Mapping[str, Any] | None = None,
) -> Decision:
    """Restore the state a decision replaced; the undo is itself a new decision.

    Only the latest decision of its project (or release) can be undone:
    undoing an older one would silently discard the decisions after it.
    """
    target = session.get(Decision, decision_id)
    if target is None:
        raise NotFound(f"no decision #{decision_id}")
    if target.action == UNBLOCK_FILE:
        raise Conflict(f"decision #{decision_id} cleared a file's block; a new re-upload blocks it again")
    if target.undone_by is not None:
        raise Conflict(f"decision #{decision_id} was already undone by #{target.undone_by}")
    later = session.scalars(
        select(Decision.id)
        .where(
            Decision.project == target.project,
            Decision.version.is_(None) if target.version is None else Decision.version == target.version,
            Decision.id > target.id,
            Decision.action != UNBLOCK_FILE,
        )
        .order_by(desc(Decision.id))
        .limit(1)
    ).first()
    if later is not None:
        raise Conflict(f"decision #{decision_id} was followed by #{later}; undo that one first")
    previous = dict(target.request or {}).get("previous")
    if previous is None:
        previous = _replay_previous(session, target)
    if not previous or not previous.get("state"):
        raise Conflict(
            f"decision #{decision_id} was the first for {target.project}"
            + (f" {target.version}" if target.version else "")
            + "; there is no earlier state to restore (decide again instead)"
        )
    current = (
        _project_snapshot(session.get(Project, target.project))
        if target.version is None
        else _release_snapshot(find_release(session, target.project, target.version))
    )
    info = {**(request or {}), "undo_of": target.id, "previous": current}
    text = f"undo #{target.id}: {reason}"
    if target.version is None:
        decision = _restore_project(session, target.project, previous, actor, text, now, info)
    else:
        decision = _restore_release(session, target.project, target.version, previous, actor, text, now, info)
    target.undone_by = decision.id
    session.flush()
    return decision


# -- internals -----------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _project_snapshot(row: Project | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"state": row.state, "allow_until": _iso(row.allow_until), "reason": row.reason}


def _release_snapshot(row: Release | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"state": row.state, "held_until": _iso(row.held_until), "reason": row.reason}


def _replay_previous(session: Session, target: Decision) -> dict[str, Any] | None:
    """For decisions made without a snapshot (the policy's): replay the ones before it."""
    same_scope = Decision.version.is_(None) if target.version is None else Decision.version == target.version
    earlier = list(
        session.scalars(
            select(Decision)
            .where(
                Decision.project == target.project, same_scope, Decision.id < target.id,
                Decision.action != UNBLOCK_FILE,
            )
            .order_by(Decision.id)
        )
    )
    state: dict[str, Any] | None = None
    for decision in earlier:
        if target.version is None:
            if decision.action == "break-glass":
                state = {
                    "state": (state or {}).get("state") or "quarantined",
                    "allow_until": _iso(decision.expires_at),
                }
            else:
                state = {"state": PROJECT_STATE_OF_ACTION.get(decision.action)}
        else:
            state = {
                "state": RELEASE_STATE_OF_ACTION.get(decision.action),
                "held_until": _iso(decision.expires_at) if decision.action == "hold" else None,
            }
    return state


def _restore_project(
    session: Session,
    project: str,
    previous: Mapping[str, Any],
    actor: str,
    reason: str,
    now: datetime,
    info: dict[str, Any],
) -> Decision:
    action = ACTION_OF_PROJECT_STATE.get(previous["state"])
    if action is None:
        raise Conflict(f"cannot restore unknown state {previous['state']!r}")
    decision = decide_project(session, project=project, action=action, actor=actor, reason=reason, now=now, request=info)
    allow_until = parse_utc(previous.get("allow_until"))
    if allow_until is not None and allow_until > now and action != "allow":
        # The replaced state had a break-glass window still open: reopen it.
        decision = decide_project(
            session, project=project, action="allow", actor=actor, reason=reason, now=now,
            expires_at=allow_until, request=info,
        )
    return decision


def _restore_release(
    session: Session,
    project: str,
    version: str,
    previous: Mapping[str, Any],
    actor: str,
    reason: str,
    now: datetime,
    info: dict[str, Any],
) -> Decision:
    action = _RELEASE_ACTION.get(previous["state"])
    if action is None:
        raise Conflict(f"cannot restore unknown state {previous['state']!r}")
    return decide_release(
        session,
        project=project,
        version=version,
        action=action,
        actor=actor,
        reason=reason,
        now=now,
        held_until=parse_utc(previous.get("held_until")) if action == "hold" else None,
        request=info,
    )


def undoable(decisions: list[Any]) -> set[int]:
    """Ids of the decisions ``undo`` would accept: the latest of each project or release,
    not undone, with a state before it to go back to."""
    latest: dict[str | None, Any] = {}
    counts: dict[str | None, int] = {}
    for decision in decisions:
        if decision.action == UNBLOCK_FILE:
            continue
        counts[decision.version] = counts.get(decision.version, 0) + 1
        current = latest.get(decision.version)
        if current is None or decision.id > current.id:
            latest[decision.version] = decision
    result = set()
    for version, decision in latest.items():
        if decision.undone_by is not None:
            continue
        request = decision.request or {}
        if request.get("previous") if "previous" in request else counts[version] > 1:
            result.add(decision.id)
    return result
