"""A structured access log: one JSON object per request, for log pipelines.

Enabled by ``[server] access_log = "json"``.  Log lines get shipped to
places with wider access than the mirror itself, so what is written is
chosen field by field: no request headers except the user agent (never
``Authorization`` or cookies), and the URL passes through
``netguard.redact_url`` so a token in a query string is masked.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.upstream.netguard import redact_url
from mirror.web.watch import watch_response

LOGGER_NAME = "indexguard.access"
MAX_FIELD = 300


def access_logger() -> logging.Logger:
    """The access logger, writing bare JSON lines to stdout (set up once)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # keep the lines pure JSON, not prefixed by the root format
    return logger


def access_record(
    scope: Scope, status: int, sent: int, seconds: float, at: datetime
) -> dict[str, Any]:
    """The fields logged for one request; pure, so what may leak is testable."""
    path = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    target = redact_url(f"{path}?{query}" if query else path)
    client = scope.get("client")
    route = scope.get("route")
    return {
        "time": at.isoformat(timespec="milliseconds"),
        "client": client[0] if client else None,
        "method": scope.get("method"),
        "path": target[:2048],
        "route": getattr(route, "path", None),
        "status": status,
        "bytes": sent,
        "duration_ms": round(seconds * 1000, 3),
        "user_agent": _header(scope, b"user-agent")[:MAX_FIELD],
    }


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


class JsonAccessLog:
    """ASGI middleware writing one ``access_record`` per HTTP request."""

    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        def write(status: int, sent: int, seconds: float) -> None:
            record = access_record(scope, status, sent, seconds, datetime.now(timezone.utc))
            self.logger.info(json.dumps(record, ensure_ascii=True))

        await watch_response(self.app, scope, receive, send, write)
