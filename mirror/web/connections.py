"""Connection limits the HTTP server itself enforces (the Dockerfile exposes uvicorn directly).

uvicorn bounds idle keep-alive time (``timeout_keep_alive``) and, with
``limit_concurrency``, answers 503 once that many connections or requests
are open.  It does not bound how long a client may take to send its
headers, nor how large they may grow (httptools buffers any size), nor
close connections past the limit: a client that opens thousands of
connections and sends half a request line on each holds a file descriptor
per connection for ever, until the process can accept nothing, not even
``/healthz``.  ``GuardedHttpToolsProtocol`` adds all three to uvicorn's
httptools protocol (the C parser ``uvicorn[standard]`` brings: about twice
the request rate of the pure-Python h11 one).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mirror.config import ServerSettings

_TIMEOUT_BODY = b"indexguard: request headers did not arrive in time\n"
_TOO_LARGE_BODY = b"indexguard: request line and headers are too large\n"
# After refusing an oversized head, keep reading (and dropping) what the
# client is still sending for this long, or this much: closing at once with
# unread bytes makes the kernel send a reset, which destroys the refusal
# before the client reads it.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-read deadline, a cap on the request head
    and a hard cap on open connections.

    The deadline starts when the connection opens, and again with the first
    byte of each later request on it (the idle time between requests is
    uvicorn's keep-alive timeout); sending bytes slowly does not extend it.
    httptools keeps no head buffer of its own to measure, so the head is
    counted here as it arrives, up to the blank line that ends it.
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
        self._in_head = True  # between requests, or inside a request line and headers
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen, for a blank line split across reads

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.close()  # before reading a byte: the descriptor is free again at once
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._dropped is not None:  # an oversized head was refused; the close is lingering
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        if self._in_head:
            self._arm_header_deadline()  # the first byte of a request on a kept-alive connection
            if self._head_too_large(data):
                self._refuse_oversized_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes, self._tail = False, 0, b""
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows on this connection is the next request's head

    def _head_too_large(self, data: bytes) -> bool:
        """The unfinished request head would pass the cap (body bytes after it do not count)."""
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        if end == -1:
            self._head_bytes += len(data)
            self._tail = window[-3:]
            return self._head_bytes > self.max_header_bytes
        return self._head_bytes + (end + 4 - len(self._tail)) > self.max_header_bytes

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None and not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is None or self.cycle.response_complete:
            # No request has started, so uvicorn cannot write a response; these bytes are the whole answer.
            self.transport.write(_plain_response(b"408 Request Timeout", _TIMEOUT_BODY))
        # else a response is still being written: a 408 now would be spliced into it; just close.
        self.transport.close()

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
            GuardedHttpToolsProtocol,
            header_timeout=server.header_timeout,
            max_connections=server.max_connections,
            max_header_bytes=server.max_header_bytes,
        ),
        # X-Forwarded-For is believed from the configured proxies only, never from any peer.
        "proxy_headers": bool(server.trusted_proxies),
        "forwarded_allow_ips": list(server.trusted_proxies),
        "timeout_keep_alive": server.keep_alive_timeout,
        "limit_concurrency": server.max_connections,
    }
