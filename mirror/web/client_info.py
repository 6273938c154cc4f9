"""Who asked: the request facts kept with every decision it triggered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request


def request_info(request: Request, now: datetime) -> dict[str, Any]:
    """What a reviewer wants to know about the request that triggered a decision."""
    return {
        "time": now.isoformat(),
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent", "")[:500],
        "path": request.url.path,
    }
