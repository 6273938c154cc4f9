"""Watching an HTTP response go out, for the middlewares that account for it.

The access log and the metrics both need a response's status, its size and
how long it took, exactly once per request, including when the app fails or
the client leaves before the end.
"""

from __future__ import annotations

import time
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Finished = Callable[[int, int, float], None]


async def watch_response(app: ASGIApp, scope: Scope, receive: Receive, send: Send, finished: Finished) -> None:
    """Run ``app``; call ``finished(status, bytes sent, seconds)`` once per HTTP request.

    It is called just before the last body message goes out, so that a
    client that has its whole response never outruns the accounting, or
    when the app ends without finishing the response (status 500 if it never
    started one).  Other ASGI scopes pass through untouched.
    """
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    started = time.perf_counter()
    status = 500
    sent = 0
    done = False

    def finish() -> None:
        nonlocal done
        done = True
        finished(status, sent, time.perf_counter() - started)

    async def watching_send(message: Message) -> None:
        nonlocal status, sent
        kind = message["type"]
        if kind == "http.response.body":
            sent += len(message.get("body", b""))
            if not message.get("more_body", False):
                finish()
        elif kind == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, watching_send)
    finally:
        if not done:
            finish()
