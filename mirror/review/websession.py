"""Browser sessions for the admin pages, kept on the server.

The cookie holds a random session id and nothing else: not the API token
(a stolen cookie then dies with its session, and logging out really ends
it) and not the role (read afresh from the token on every request, so a
revoked token ends its sessions at once).  Each session carries its own
synchronizer token for CSRF protection.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mirror.db.models import AdminSession, ApiToken
from mirror.review.tokens import Principal

COOKIE = "indexguard_session"
LOGIN_COOKIE = "indexguard_login"
COOKIE_PATH = "/admin"


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start(session: Session, principal: Principal, now: datetime, lifetime: timedelta) -> tuple[str, WebSession]:
    """Open a session; returns the cookie value and the session."""
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    row = AdminSession(
        id_hash=_hash(session_id),
        token_id=principal.token_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return session_id, WebSession(principal, row.csrf_token, row.expires_at)


def lookup(session: Session, session_id: str | None, now: datetime) -> WebSession | None:
    """The live session a cookie names, or None (expired, unknown, token revoked)."""
    if not session_id or len(session_id) > 128:
        return None
    found = session.execute(
        select(AdminSession, ApiToken)
        .join(ApiToken, ApiToken.id == AdminSession.token_id)
        .where(AdminSession.id_hash == _hash(session_id))
    ).first()
    if found is None:
        return None
    row, token = found
    if row.expires_at <= now or token.revoked_at is not None:
        return None
    return WebSession(Principal(token.name, token.role, token.id), row.csrf_token, row.expires_at)


def end(session: Session, session_id: str | None) -> None:
    if session_id:
        session.execute(delete(AdminSession).where(AdminSession.id_hash == _hash(session_id)))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison that is False when either side is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
