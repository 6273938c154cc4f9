"""Who may call what: bearer tokens for the API, Basic credentials for package clients.

Admin endpoints depend on ``require("reviewer")`` or ``require("admin")``:
no or a wrong token is a 401, a token whose role is too small is a 403.
Package clients are checked by ``ClientAuthMiddleware`` only when
``[review] require_client_auth`` is on, so the default hot path pays nothing.
Secrets are never logged: a failed attempt logs the client address only.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any, Awaitable, Callable

import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mirror.review.tokens import Principal, authenticate, hash_secret

log = logging.getLogger("indexguard.review.auth")

_bearer = HTTPBearer(auto_error=False, description="An API token: `indexguard admin token create`.")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="indexguard"'}


def principal_for(request: Request, secret: str) -> Principal | None:
    """Look a secret up in the database (a short write transaction for last_used_at)."""
    services = request.app.state.services
    with services.sessions.begin() as session:
        return authenticate(session, secret, services.clock())


def api_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing credentials: send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    principal = principal_for(request, credentials.credentials.strip())
    if principal is None:
        log.warning("rejected API token from %s", request.client.host if request.client else "?")
        raise HTTPException(401, "invalid or revoked token", headers=_CHALLENGE)
    return principal


def require(role: str) -> Callable[..., Principal]:
    """A dependency that admits principals whose role includes ``role``."""

    def dependency(principal: Principal = Depends(api_principal)) -> Principal:
        if not principal.can(role):
            raise HTTPException(403, f"this needs the {role} role; token {principal.name!r} is a {principal.role}")
        return principal

    return dependency


# -- package clients -----------------------------------------------------------

PROTECTED_PREFIXES = ("/simple", "/files/", "/pypi/", "/why/")
CACHE_SECONDS = 10.0
_CACHE_LIMIT = 10_000


class ClientTokenCache:
    """Recently verified client secrets (by hash), so each page or file costs no query.

    A revoked token keeps working for package clients for at most
    ``CACHE_SECONDS`` in other processes; this process forgets at once.
    """

    def __init__(self, seconds: float = CACHE_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.monotonic = monotonic
        self._valid: dict[str, float] = {}

    def fresh(self, digest: str) -> bool:
        until = self._valid.get(digest)
        return until is not None and self.monotonic() < until

    def remember(self, digest: str) -> None:
        if len(self._valid) >= _CACHE_LIMIT:
            self._valid.clear()
        self._valid[digest] = self.monotonic() + self.seconds

    def clear(self) -> None:
        self._valid.clear()


def client_cache(app: Any) -> ClientTokenCache:
    state = app.state
    cache = getattr(state, "client_token_cache", None)
    if cache is None:
        cache = state.client_token_cache = ClientTokenCache()
    return cache


def basic_password(header: str) -> str | None:
    """The password of an HTTP Basic header (pip and uv send the token there)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep and password else None


class ClientAuthMiddleware:
    """Refuse /simple/ and /files/ without a valid token when client auth is required."""

    def __init__(self, app: Any, *, required: bool) -> None:
        self.app = app
        self.required = required

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if not self.required or scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if not await self._authorised(scope):
            await _refuse(send)
            return
        await self.app(scope, receive, _private_cache(send))

    async def _authorised(self, scope: dict) -> bool:
        header = ""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        secret = basic_password(header)
        if secret is None:
            return False
        app = scope["app"]
        cache = client_cache(app)
        digest = hash_secret(secret)
        if cache.fresh(digest):
            return True
        services = app.state.services

        def check() -> bool:
            with services.sessions.begin() as session:
                return authenticate(session, secret, services.clock()) is not None

        if await anyio.to_thread.run_sync(check):
            cache.remember(digest)
            return True
        client = scope.get("client") or ("?",)
        log.warning("rejected package client credentials from %s", client[0])
        return False


async def _refuse(send: Callable[[dict], Awaitable[None]]) -> None:
    body = b"indexguard: this mirror needs credentials: put a token in the index URL, http://user:TOKEN@host/simple/\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="indexguard"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _private_cache(send: Callable[[dict], Awaitable[None]]) -> Callable[[dict], Awaitable[None]]:
    """Answers given to authenticated clients must not sit in shared caches."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v.replace(b"public", b"private")) if k.lower() == b"cache-control" else (k, v)
                for k, v in message.get("headers", [])
            ]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
