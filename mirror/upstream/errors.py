"""The one error hierarchy for everything that goes wrong talking to an upstream.

Pages, the JSON API, file downloads and the network guard all raise these,
so a caller that handles ``UpstreamError`` handles every upstream failure
(an unresolvable host included) and nothing escapes as a 500.  Messages
carry redacted URLs and error types only, never credentials, and never the
bytes (or the hash of the bytes) a refused fetch returned.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Upstream could not give a usable answer: down, slow, an error status, hostile.

    ``status`` is the HTTP status upstream answered with, when that is the cause.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BlockedURL(UpstreamError):
    """The network guard refused to follow a URL (scheme, host, port or address not allowed)."""


class UpstreamUnreachable(UpstreamError):
    """Connecting failed or timed out before upstream answered (what the circuit breaker counts)."""


class ResponseTooLarge(UpstreamError):
    """An upstream answer outgrew its configured cap; reading stopped at the cap."""


class RefusedEncoding(UpstreamError):
    """Upstream sent a file with a content coding; files are accepted as identity only."""


class CircuitOpen(UpstreamError):
    """Upstream failed to connect repeatedly just now, so we fail fast instead of waiting.

    ``retry_after`` is how many seconds remain until the next attempt is let through.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
