"""API tokens: creation, listing, revocation and lookup.

A token is a long random secret shown once; the database keeps only its
sha256.  A plain hash is enough here (no slow KDF) because the secret has
256 bits of entropy: nothing about it can be guessed from the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mirror.db.models import ApiToken
from mirror.states import ROLE_RANK, ROLES

# Ordered: each role may do everything the roles before it may.
PREFIX = "igt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class TokenError(ValueError):
    """A token cannot be created or revoked; the message says why."""


class DuplicateName(TokenError):
    """The name is taken (by a live or a revoked token)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (recorded as the actor) and role."""

    name: str
    role: str
    token_id: int

    def can(self, role: str) -> bool:
        """True when this principal's role includes ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def new_secret() -> str:
    """A fresh token: a recognisable prefix (for secret scanners) and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise TokenError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TokenError(
            f"invalid token name {name!r}: 1-64 characters, letters, digits and . _ @ + - "
            "(it is recorded as the actor of every decision made with the token)"
        )
    return name


def create_token(
    session: Session, *, name: str, role: str, created_by: str, now: datetime
) -> tuple[ApiToken, str]:
    """Store a new token and return it with its secret (the only time it exists in clear)."""
    check_name(name)
    check_role(role)
    taken = f"a token named {name!r} exists (names are never reused); choose another name"
    if session.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise DuplicateName(taken)
    secret = new_secret()
    row = ApiToken(
        name=name,
        role=role,
        token_hash=hash_secret(secret),
        created_at=now,
        created_by=created_by,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by someone else in the meantime
        raise DuplicateName(taken) from None
    return row, secret


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))


def revoke_token(session: Session, name: str, now: datetime) -> ApiToken:
    """Revoke a token by name; its browser sessions end with it."""
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise TokenError(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = now
    session.flush()
    return row


def authenticate(session: Session, secret: str, now: datetime) -> Principal | None:
    """The principal a secret belongs to, or None for an unknown or revoked one."""
    if not secret or len(secret) > 256:
        return None
    digest = hash_secret(secret)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(name=row.name, role=row.role, token_id=row.id)
