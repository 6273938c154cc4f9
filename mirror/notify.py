"""Webhook notifications: each new quarantine, deny and critical finding, as JSON.

The body has a Slack-compatible ``text`` line (so a Slack, Mattermost or
Teams incoming webhook works as is) plus structured fields for anything
else.  Delivery never runs on a client's request: ``notify`` only puts the
message on a bounded queue and a background thread posts it, retrying with
exponential backoff.  When the queue is full a message is dropped and
logged rather than making an install wait.  Webhook URLs carry secrets in
their path, so logs show the scheme and host only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

import requests
from pydantic import Field

from mirror.clock import Clock, utcnow
from mirror.upstream.netguard import redact_url
from mirror.config import HttpUrlText, Section, Settings, section_from_mapping

log = logging.getLogger("indexguard.notify")

IDLE_SECONDS = 30.0
POLL_SECONDS = 0.5


class NotifySettings(Section):
    """The ``[notify]`` table; the URL is kept out of the repr (its path is the secret)."""

    webhook_url: HttpUrlText = Field("", repr=False)
    timeout: float = Field(10.0, ge=0.1, le=300)  # seconds per attempt
    max_attempts: int = Field(5, ge=1, le=100)
    backoff: float = Field(2.0, ge=0, le=3600)  # seconds before the first retry; doubles each time
    max_backoff: float = Field(300.0, ge=0, le=86400)
    queue_size: int = Field(1000, ge=1, le=1_000_000)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> NotifySettings:
        return section_from_mapping(cls, "notify", raw)

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifySettings:
        return cls.from_mapping(settings.extra.get("notify", {}))


def where(url: str) -> str:
    """Scheme and host of a webhook URL: the path of most webhooks is itself the secret."""
    parts = urlsplit(redact_url(url))
    return f"{parts.scheme}://{parts.netloc}"


def _slack_escape(text: str) -> str:
    # Slack's message format reserves these three; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(kind: str, payload: Mapping[str, Any], *, at: datetime, public_url: str = "") -> dict[str, Any]:
    """The JSON body for one notification (pure: tests read it without a server)."""
    project = str(payload.get("project") or "?")
    if kind == "quarantine":
        headline = f"{project} is quarantined and waits for review"
    elif kind == "deny":
        headline = f"{project} was denied"
    elif kind == "critical-finding":
        finding = payload.get("finding") or {}
        headline = f"critical finding on {project}: {finding.get('title', '?')}"
    elif kind == "file-removed":
        finding = payload.get("finding") or {}
        headline = f"{project}: {finding.get('title', 'upstream removed a cached file')}"
    elif kind in ("content-deny", "content-hold"):
        verb = "denied" if kind == "content-deny" else "held for review"
        headline = f"{project} {payload.get('version', '?')} {verb} for what is inside {payload.get('file', '?')}"
    else:
        headline = f"{kind}: {project}"
    reasons = [str(r) for r in payload.get("reasons") or []]
    text = _slack_escape(f"IndexGuard: {headline}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    review_url = None
    if public_url:
        review_url = public_url.rstrip("/") + "/admin/projects/" + quote(project, safe="")
        text += f" <{review_url}|Review>"
    body = {key: value for key, value in payload.items() if key not in ("text", "kind", "at")}
    body.update(text=text, kind=kind, project=project, at=at.isoformat(), review_url=review_url)
    return body


Poster = Callable[[str, dict[str, Any], float], int]


def _requests_poster() -> Poster:
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = "indexguard-notify"

    def post(url: str, body: dict[str, Any], timeout: float) -> int:
        response = session.post(url, json=body, timeout=timeout, allow_redirects=False)
        response.close()
        return response.status_code

    return post


class WebhookNotifier:
    """Posts notifications from a background thread; ``notify`` never blocks.

    The thread starts on the first message and ends after ``IDLE_SECONDS``
    without one, so an idle mirror (or a test) holds no thread.
    """

    def __init__(self, settings: NotifySettings, *, public_url: str = "", clock: Clock = utcnow,
                 post: Poster | None = None) -> None:
        if not settings.webhook_url:
            raise ValueError("no webhook URL configured")
        self.settings = settings
        self.public_url = public_url  # the mirror's external URL (server.public_url), for links to the review page
        self.clock = clock
        self._post = post or _requests_poster()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=settings.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._counts = {"sent": 0, "failed": 0, "dropped": 0, "attempts": 0}
        self._idle = threading.Condition(self._lock)
        self._busy = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> WebhookNotifier | None:
        """A notifier when ``[notify] webhook_url`` is set, else None."""
        config = NotifySettings.from_settings(settings)
        return cls(config, public_url=settings.server.public_url, clock=clock) if config.webhook_url else None

    def notify(self, kind: str, payload: Mapping[str, Any]) -> bool:
        """Queue one notification; False when it was dropped (queue full or closing)."""
        if self._closing.is_set():
            return False
        body = message(kind, payload, at=self.clock(), public_url=self.public_url)
        with self._lock:
            try:
                self._queue.put_nowait(body)
            except queue.Full:
                self._counts["dropped"] += 1
                log.warning("notification queue full; dropped a %s notification for %s", kind, body["project"])
                return False
            self._busy += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="indexguard-notify", daemon=True)
                self._thread.start()
        return True

    def stats(self) -> dict[str, int]:
        """Counters: sent, failed (gave up), dropped, attempts, pending."""
        with self._lock:
            return {**self._counts, "pending": self._busy}

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued notification was sent or given up (for shutdown and tests)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop retrying, let an attempt in flight finish, and end the thread."""
        self._closing.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            try:
                body = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self._closing.is_set() or time.monotonic() - idle_since >= IDLE_SECONDS:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                continue
            try:
                self._deliver(body)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
            if self._closing.is_set():
                self._drain()
                return
            idle_since = time.monotonic()

    def _drain(self) -> None:
        with self._idle:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._busy -= 1
                self._counts["dropped"] += 1
            self._thread = None
            self._idle.notify_all()

    def _deliver(self, body: dict[str, Any]) -> None:
        settings = self.settings
        target = where(settings.webhook_url)
        delay = settings.backoff
        for attempt in range(1, settings.max_attempts + 1):
            with self._lock:
                self._counts["attempts"] += 1
            try:
                status = self._post(settings.webhook_url, body, settings.timeout)
                problem = None if 200 <= status < 300 else f"HTTP {status}"
            except requests.RequestException as exc:
                status, problem = None, type(exc).__name__
            if problem is None:
                with self._lock:
                    self._counts["sent"] += 1
                return
            permanent = status is not None and 400 <= status < 500 and status not in (408, 429)
            if permanent or attempt == settings.max_attempts or self._closing.is_set():
                break
            log.info("webhook %s failed (%s), attempt %d of %d; retrying in %.1fs",
                     target, problem, attempt, settings.max_attempts, delay)
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, settings.max_backoff)
        with self._lock:
            self._counts["failed"] += 1
        log.warning("gave up a %s notification for %s: webhook %s failed (%s) after %d attempt(s)",
                    body.get("kind"), body.get("project"), target, problem, attempt)
