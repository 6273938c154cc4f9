"""Request-body limits, and no body at all from a caller who brought no credential.

Routes read their bodies before their dependencies run (FastAPI parses
the JSON body, then checks the bearer token), so an anonymous 800 MiB
body to an API route was read into memory in full and answered 422.
This middleware sits in front of every route and

- refuses a request to a protected area that carries no credential at
  all with 401 before a byte of its body is read (whether a credential is
  *valid* is still the route's business: this needs no database);
- refuses a body larger than ``[server] max_body_bytes`` with 413: at
  once when ``Content-Length`` says so, otherwise as the bytes stream in
  (chunked bodies have no length), and the connection is then closed.
  ``/legacy/`` is the one exception: its route authenticates first and
  bounds uploads by ``[internal] max_upload_bytes`` the same way;
- closes the connection after any answer given before the body was read
  (instead of letting the server drain a body nobody wants).

Pure ASGI: the body is never buffered here, only counted.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import cookie_parser

from mirror.config import ServerSettings
from mirror.review.websession import COOKIE as SESSION_COOKIE

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/api/v1/"
ADMIN_PREFIX = "/admin/"
UPLOAD_PATH = "/legacy/"
# Where the credential is the form itself (the token field) and the CSRF cookie is checked by the route.
ADMIN_SIGN_IN = "/admin/login"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CLOSE = (b"connection", b"close")


def missing_credential(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request must be refused before its body is read, or None to let the route decide.

    The API needs a bearer token on every route; admin form posts need the
    session cookie (sign-in itself is exempt: its token is in the form).
    """
    if path.startswith(API_PREFIX):
        scheme, _, value = _header(headers, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return "api"
    elif path.startswith(ADMIN_PREFIX) and method not in _SAFE_METHODS and path != ADMIN_SIGN_IN:
        if not cookie_parser(_header(headers, b"cookie")).get(SESSION_COOKIE):
            return "admin"
    return None


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` the client announced (the HTTP parser refuses a malformed one)."""
    value = _header(headers, b"content-length").strip()
    return int(value) if value.isdigit() else None


class RequestLimits:
    """ASGI middleware enforcing ``[server] max_body_bytes`` and credential presence; see the module docstring."""

    def __init__(self, app: Any, *, server: ServerSettings) -> None:
        self.app = app
        self.max_body_bytes = server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        refusal = missing_credential(scope["method"], scope["path"], headers)
        if refusal is not None:
            await _send_unauthorised(send, refusal)
            return
        # The upload route authenticates first and bounds its body by [internal] max_upload_bytes.
        limit = None if scope["path"] == UPLOAD_PATH else self.max_body_bytes
        declared = declared_length(headers)
        if limit is not None and declared is not None and declared > limit:
            await _send_too_large(send, limit)
            return
        has_body = bool(declared) or bool(_header(headers, b"transfer-encoding"))
        guard = _BodyGuard(limit, has_body, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # The app may fail in any way on a body cut short; the answer is still 413.
            if not guard.exceeded:
                raise
        if guard.exceeded and not guard.started:
            await _send_too_large(send, limit)


class BodyTooLarge(Exception):
    """Raised to the app from ``receive`` once the body passes its cap."""


class _BodyGuard:
    """Counts body bytes as the app receives them; turns the app's answer into 413 once past the cap.

    An answer given before the body has been read (a refusal, mostly) closes
    the connection: the server would otherwise read and discard the rest of
    the body, however long, to reach the next request.
    """

    def __init__(self, limit: int | None, has_body: bool, receive: Receive, send: Send) -> None:
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.body_complete = not has_body
        self.exceeded = False
        self.started = False  # a response went out (ours or the app's)

    async def receive(self) -> Message:
        if self.exceeded:
            raise BodyTooLarge(f"request body is larger than {self.limit} bytes")
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_complete = not message.get("more_body", False)
            if self.limit is not None and self.received > self.limit:
                self.exceeded = True
                raise BodyTooLarge(f"request body is larger than {self.limit} bytes")
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            # Whatever the app makes of a body cut short (400, 422, 500), the client gets 413.
            if message["type"] == "http.response.start" and not self.started:
                self.started = True
                await _send_too_large(self._send, self.limit or 0)
            return
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            if not self.body_complete and _CLOSE not in headers:
                message = {**message, "headers": [*headers, _CLOSE]}
        await self._send(message)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


_UNAUTHORISED = {
    "api": (
        b'{"detail":"missing credentials: send \'Authorization: Bearer <token>\'"}',
        b"application/json",
        b'Bearer realm="indexguard"',
    ),
    "admin": (
        b"indexguard: your session has ended; sign in again at /admin/login, then repeat the action\n",
        b"text/plain; charset=utf-8",
        None,
    ),
}


async def _send_unauthorised(send: Send, area: str) -> None:
    body, media_type, challenge = _UNAUTHORISED[area]
    extra = [(b"www-authenticate", challenge)] if challenge else []
    # The unread body may still be on its way: close rather than read it to find the next request.
    await _send_plain(send, 401, body, media_type, extra)


async def _send_too_large(send: Send, limit: int) -> None:
    body = f"indexguard: request body too large: the limit here is {limit} bytes\n".encode()
    await _send_plain(send, 413, body, b"text/plain; charset=utf-8", [])


async def _send_plain(send: Send, status: int, body: bytes, media_type: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
        _CLOSE,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
