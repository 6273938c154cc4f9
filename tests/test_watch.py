from __future__ import annotations

import asyncio

import pytest

from mirror.web.watch import watch_response


class Watched:
    """Runs an ASGI app through ``watch_response`` and keeps what happened."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.sent: list[dict] = []

    def run(self, app, scope: dict) -> None:
        async def receive() -> dict:
            return {"type": "http.request"}

        async def send(message: dict) -> None:
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if scope["type"] == "http" and last:
                # Accounted before the last body message goes out.
                assert self.calls, "finished must be called before the last body message is sent"
            self.sent.append(message)

        def finished(status: int, size: int, seconds: float) -> None:
            assert seconds >= 0
            self.calls.append((status, size))

        asyncio.run(watch_response(app, scope, receive, send, finished))


async def _streaming_app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"de"})


async def _failing_app(scope, receive, send) -> None:
    raise RuntimeError("the app broke before answering")


async def _half_app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 206, "headers": []})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})


def test_a_finished_response_is_accounted_once_with_status_and_size() -> None:
    watched = Watched()
    watched.run(_streaming_app, {"type": "http"})
    assert watched.calls == [(200, 5)] and len(watched.sent) == 3


def test_an_app_that_fails_before_answering_counts_as_500_and_the_error_goes_on() -> None:
    watched = Watched()
    with pytest.raises(RuntimeError, match="broke before answering"):
        watched.run(_failing_app, {"type": "http"})
    assert watched.calls == [(500, 0)]


def test_a_response_that_never_ends_is_accounted_when_the_app_returns() -> None:
    watched = Watched()
    watched.run(_half_app, {"type": "http"})
    assert watched.calls == [(206, 3)]


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_pass_through_unwatched(kind: str) -> None:
    watched = Watched()
    watched.run(_streaming_app, {"type": kind})
    assert watched.calls == [] and len(watched.sent) == 3
