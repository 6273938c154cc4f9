"""Connection limits the HTTP server itself enforces (the Dockerfile exposes uvicorn directly).

uvicorn bounds idle keep-alive time (``timeout_keep_alive``), how much of
an unfinished request head it buffers (h11's ``max_incomplete_event_size``;
httptools has no such bound, so ``serve`` runs h11) and, with
``limit_concurrency``, answers 503 once that many connections or requests
are open.  It does not bound how long a client may take to send its
headers, nor close connections past the limit: a client that opens
thousands of connections and sends half a request line on each holds a
file descriptor per connection for ever, until the process can accept
nothing, not even ``/healthz``.  ``GuardedH11Protocol`` adds both.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from mirror.config import ServerSettings

_TIMEOUT_BODY = b"indexguard: request headers did not arrive in time\n"
_TOO_LARGE_BODY = b"indexguard: request line and headers are too large\n"
# After refusing an oversized head, keep reading (and dropping) what the
# client is still sending for this long, or this much: closing at once with
# unread bytes makes the kernel send a reset, which destroys the refusal
# before the client reads it.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header-read deadline and a hard cap on open connections.

    The deadline starts when the connection opens, and again with the first
    byte of each later request on it (the idle time between requests is
    uvicorn's keep-alive timeout).  Sending bytes slowly does not extend it.
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        max_connections: int,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.max_header_bytes = max_header_bytes
        self._header_deadline: asyncio.TimerHandle | None = None
        self._dropped: int | None = None  # bytes dropped while lingering after a refusal

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Closed before reading a byte: the descriptor is free again at once.
            transport.close()
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._dropped is not None:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        if self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the first byte of a request on a kept-alive connection
            if self._head_too_large(data):
                self._refuse_oversized_head()
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()  # the request head is complete

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None and not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        # No request has started, so h11 cannot write a response; these bytes are the whole answer.
        self.transport.write(_plain_response(b"408 Request Timeout", _TIMEOUT_BODY))
        self.transport.close()

    def _head_too_large(self, data: bytes) -> bool:
        """The unfinished request head would pass the cap (body bytes after it do not count)."""
        buffered = self.conn.trailing_data[0]
        if len(buffered) + len(data) <= self.max_header_bytes:
            return False
        return b"\r\n\r\n" not in (bytes(buffered) + data)[: self.max_header_bytes + 4]

    def _refuse_oversized_head(self) -> None:
        """431, then a lingering close: the client still sending its head gets to read the answer."""
        self._disarm_header_deadline()
        self.transport.write(_plain_response(b"431 Request Header Fields Too Large", _TOO_LARGE_BODY))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._dropped = 0
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def _plain_response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def server_options(server: ServerSettings) -> dict[str, Any]:
    """The uvicorn options that carry ``[server]``'s connection limits (``serve`` and tests use these)."""
    return {
        "http": functools.partial(
            GuardedH11Protocol,
            header_timeout=server.header_timeout,
            max_connections=server.max_connections,
            max_header_bytes=server.max_header_bytes,
        ),
        # X-Forwarded-For is believed from the configured proxies only, never from any peer.
        "proxy_headers": bool(server.trusted_proxies),
        "forwarded_allow_ips": list(server.trusted_proxies),
        "timeout_keep_alive": server.keep_alive_timeout,
        "limit_concurrency": server.max_connections,
        "h11_max_incomplete_event_size": server.max_header_bytes,
    }
