"""Webhook notifications: delivered off the request path, retried, given up, never leaking the URL."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mirror.notify import NotifySettings, WebhookNotifier, message, where
from mirror.config import SettingsError
from tests.review.support import TYPOSQUAT, get, quarantine

SECRET = "T0KEN-IN-THE-PATH"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records the JSON bodies it is sent."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.got.set()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """Accepts connections and reads requests, but answers only when told to: a hung receiver."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/{SECRET}"
        self.received = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            if conn.recv(65536):
                self.received.set()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        except OSError:
            pass
        self.sock.close()
        for conn in self.connections:
            conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Wait for a condition (this is not a timing assertion: the deadline only stops a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def notify_section(url: str, **extra: Any) -> dict[str, Any]:
    return {"notify": {"webhook_url": url, "timeout": 5.0, "max_attempts": 3, "backoff": 0.05, **extra}}


# -- the message ----------------------------------------------------------------------


def test_message_is_slack_compatible_and_structured() -> None:
    from datetime import datetime, timezone

    at = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    body = message("quarantine", {"project": "a<b>&c", "action": "review", "reasons": ["looks like <requests>"]},
                   at=at, public_url="https://mirror.example/")
    assert body["text"] == (
        "IndexGuard: a&lt;b&gt;&amp;c is quarantined and waits for review (looks like &lt;requests&gt;)"
        " <https://mirror.example/admin/projects/a%3Cb%3E%26c|Review>"
    )
    assert (body["kind"], body["project"], body["action"], body["at"]) == ("quarantine", "a<b>&c", "review", at.isoformat())
    critical = message("critical-finding", {"project": "x", "finding": {"title": "claims an internal name"}}, at=at)
    assert critical["text"] == "IndexGuard: critical finding on x: claims an internal name"
    assert critical["review_url"] is None and critical["finding"] == {"title": "claims an internal name"}
    assert message("deny", {"project": "x"}, at=at)["text"] == "IndexGuard: x was denied"


def test_settings_are_checked_and_name_the_key() -> None:
    assert NotifySettings.from_mapping({}).webhook_url == ""
    for raw, key in (
        ({"webhook_url": "ftp://x/"}, "notify.webhook_url"),
        ({"webhook_url": 5}, "notify.webhook_url"),
        ({"timeout": 0}, "notify.timeout"),
        ({"max_attempts": 0}, "notify.max_attempts"),
        ({"max_attempts": 2.5}, "notify.max_attempts"),
        ({"backoff": "soon"}, "notify.backoff"),
        ({"retries": 3}, "notify.retries"),
    ):
        with pytest.raises(SettingsError) as caught:
            NotifySettings.from_mapping(raw)
        assert caught.value.key == key
    with pytest.raises(SettingsError) as caught:
        NotifySettings.from_mapping({"webhook_url": f"ftp://user:pw@host/{SECRET}"})
    assert "pw" not in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        NotifySettings.from_mapping({"webhook_url": f"htps://hooks.example/services/{SECRET}"})  # a typo
    assert SECRET not in str(caught.value) and "hooks.example" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        NotifySettings.from_mapping({"webhook_url": 31337})  # a wrong type: the value is not echoed either
    assert caught.value.key == "notify.webhook_url" and "31337" not in str(caught.value)
    good = NotifySettings.from_mapping({"webhook_url": f"https://hooks.example/services/{SECRET}", "timeout": 3})
    assert good.webhook_url.endswith(SECRET) and good.timeout == 3.0
    assert SECRET not in repr(good) and SECRET not in str(good)


def test_logs_show_the_host_only() -> None:
    assert where(f"https://user:pw@hooks.example:8443/services/{SECRET}?token=abc") == "https://hooks.example:8443"


# -- delivery ----------------------------------------------------------------------------


def test_a_quarantine_is_delivered(start_mirror, index_server, tmp_path) -> None:
    receiver = Receiver()
    try:
        mirror = start_mirror(**notify_section(receiver.url))
        quarantine(mirror, index_server, tmp_path)
        wait_for(lambda: receiver.bodies, "the webhook")
        assert mirror.services.notifier.wait_idle(timeout=60)  # the 200 reached the notifier too
    finally:
        receiver.stop()
    body = receiver.bodies[0]
    assert body["kind"] == "quarantine" and body["project"] == TYPOSQUAT and body["action"] == "review"
    assert body["text"].startswith(f"IndexGuard: {TYPOSQUAT} is quarantined") and "requests" in body["text"]
    assert body["findings"][0]["target"] == "requests"
    assert mirror.services.notifier.stats()["sent"] == 1


def test_a_receiver_that_is_down_at_first_gets_it_later(start_mirror, index_server, tmp_path) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    url = f"http://127.0.0.1:{port}/hooks/{SECRET}"
    mirror = start_mirror(**notify_section(url, max_attempts=50, backoff=0.05, max_backoff=0.2))
    quarantine(mirror, index_server, tmp_path)
    notifier = mirror.services.notifier
    wait_for(lambda: notifier.stats()["attempts"] >= 2, "two failed attempts")
    assert notifier.stats()["sent"] == 0
    receiver = Receiver(port)
    try:
        wait_for(lambda: receiver.bodies, "the retried webhook")
        assert notifier.wait_idle(timeout=60)
    finally:
        receiver.stop()
    stats = notifier.stats()
    # A second attempt only starts after a failed one.
    assert stats["sent"] == 1 and stats["failed"] == 0 and stats["attempts"] >= 2
    assert receiver.bodies[0]["project"] == TYPOSQUAT


def test_a_receiver_that_never_answers_delays_no_client_and_is_given_up(
    start_mirror, index_server, tmp_path, caplog
) -> None:
    hole = BlackHole()
    mirror = start_mirror(**notify_section(hole.url, timeout=120.0, max_attempts=3, backoff=0.05))
    notifier = mirror.services.notifier
    try:
        # The client gets its answer while the webhook request is provably still unanswered.
        quarantine(mirror, index_server, tmp_path)
        assert get(mirror, "/healthz").status_code == 200
        wait_for(hole.received.is_set, "the webhook request to arrive")
        assert notifier.stats() == {"sent": 0, "failed": 0, "dropped": 0, "attempts": 1, "pending": 1}
        assert get(mirror, f"/simple/{TYPOSQUAT}/").status_code == 403
    finally:
        hole.close()  # the receiver goes away for good: the retries are refused
    assert notifier.wait_idle(timeout=60)
    stats = notifier.stats()
    assert (stats["sent"], stats["failed"], stats["attempts"], stats["pending"]) == (0, 1, 3, 0)
    assert "gave up a quarantine notification" in caplog.text
    assert SECRET not in caplog.text and "127.0.0.1" in caplog.text


def test_a_full_queue_drops_instead_of_blocking() -> None:
    hole = BlackHole()
    settings = NotifySettings(webhook_url=hole.url, timeout=60.0, max_attempts=1, queue_size=2)
    notifier = WebhookNotifier(settings)
    try:
        results = [notifier.notify("quarantine", {"project": f"p{n}"}) for n in range(6)]
        # One is in flight or queued, the queue holds two; the rest are dropped at once.
        assert results[:2] == [True, True] and results.count(False) >= 3
        assert notifier.stats()["dropped"] == results.count(False)
    finally:
        hole.close()
        notifier.close()
    assert notifier.wait_idle(timeout=60)


def test_a_client_error_is_not_retried() -> None:
    statuses: list[int] = []

    def post(url: str, body: dict[str, Any], timeout: float) -> int:
        statuses.append(404)
        return 404

    notifier = WebhookNotifier(NotifySettings(webhook_url="http://127.0.0.1:9/x", max_attempts=5, backoff=0), post=post)
    notifier.notify("deny", {"project": "x"})
    assert notifier.wait_idle(timeout=30)
    assert statuses == [404] and notifier.stats()["failed"] == 1


def test_a_receiver_that_never_comes_up_is_given_up_after_max_attempts(caplog) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}"  # nothing ever listens here
    notifier = WebhookNotifier(NotifySettings(webhook_url=url, timeout=5.0, max_attempts=3, backoff=0.01))
    assert notifier.notify("quarantine", {"project": "x"}) is True  # queued, not sent: returns at once
    assert notifier.wait_idle(timeout=60)
    assert notifier.stats() == {"sent": 0, "failed": 1, "dropped": 0, "attempts": 3, "pending": 0}
    assert "after 3 attempt(s)" in caplog.text and SECRET not in caplog.text
