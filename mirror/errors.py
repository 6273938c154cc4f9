"""The mirror's domain errors: why a request cannot be answered as asked.

Services raise these and never build HTTP responses; ``mirror.app`` turns
each kind into one status code in one place, so "the 403 text" lives in
the service that knows the reason and "403" lives in the web layer.
Messages are whole sentences for the person behind pip or uv; the web
layer adds the ``indexguard:`` prefix.
"""

from __future__ import annotations


class MirrorError(Exception):
    """Base of every refusal or failure a client may see."""

    def __init__(self, message: str, *, retry_after: int | None = None, project: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        # The project concerned, so the web layer can point at /why/PROJECT.
        self.project = project


class NotFound(MirrorError):
    """No such project or file, here or upstream."""


class Refused(MirrorError):
    """The policy, a reviewer or the internal/public boundary forbids serving it."""


class Unavailable(MirrorError):
    """Upstream is needed and cannot answer now; trying later may work."""


class Busy(Unavailable):
    """Too much upstream work is already under way; trying later will work."""


class TooManyRequests(MirrorError):
    """One client asked for more than its share; it may try again after a while."""


class FetchFailed(MirrorError):
    """Upstream answered, but not with bytes the mirror can serve."""
