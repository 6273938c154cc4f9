"""Prometheus metrics: what operators need to see the mirror is healthy and honest.

Every metric is created once, at import, and the call sites use children
bound to their labels in advance, so the warm path pays for one counter
increment and allocates nothing.

Several uvicorn workers are several processes, each with its own counters.
Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server
starts and prometheus-client keeps the values in files there; ``/metrics``
then sums them across workers.  The review-queue gauge is read from the
database at scrape time, so it is right whichever process answers.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any, Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, or_, select
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.db.models import Project, Release
from mirror.web.watch import watch_response

__all__ = [
    "AUDIT_DURATION",
    "MetricsMiddleware",
    "ReviewQueueCollector",
    "metrics_endpoint",
    "observe_upstream",
    "record_decision",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"

REQUESTS = Counter(
    "indexguard_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_DURATION = Histogram(
    "indexguard_http_request_duration_seconds", "Time to answer a request (to the last byte), by route template.",
    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
)
BYTES_SERVED = Counter(
    "indexguard_bytes_served", "Response body bytes sent, by route template.", ["route"],
)
CACHE = Counter(
    "indexguard_cache_requests",
    "Page and file lookups: hit (served from the mirror), miss (asked upstream), stale (upstream failed).",
    ["kind", "result"],
)
UPSTREAM_DURATION = Histogram(
    "indexguard_upstream_request_duration_seconds",
    "Time until upstream answered (headers), by request kind: page, json, file.",
    ["kind"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter(
    "indexguard_upstream_errors", "Upstream requests that failed, by kind and reason.", ["kind", "reason"],
)
DECISIONS = Counter(
    "indexguard_screening_decisions", "First screening decisions, by action.", ["action"],
)
FINDINGS = Counter(
    "indexguard_screening_findings", "Findings at screening, by detector and the action decided.",
    ["detector", "action"],
)
AUDIT_DURATION = Histogram(
    "indexguard_audit_duration_seconds", "Duration of one re-audit run.",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)

PAGE_HIT = CACHE.labels("page", "hit")
PAGE_MISS = CACHE.labels("page", "miss")
PAGE_STALE = CACHE.labels("page", "stale")
FILE_HIT = CACHE.labels("file", "hit")
FILE_MISS = CACHE.labels("file", "miss")


def observe_upstream(kind: str, started: float, error: str | None = None) -> None:
    """Record one upstream request begun at ``started`` (a ``time.perf_counter()``)."""
    UPSTREAM_DURATION.labels(kind).observe(time.perf_counter() - started)
    if error is not None:
        UPSTREAM_ERRORS.labels(kind, error).inc()


def record_decision(action: str, detectors: list[str]) -> None:
    """Count a first decision and the detectors whose findings led to it."""
    DECISIONS.labels(action).inc()
    for detector in detectors:
        FINDINGS.labels(detector, action).inc()


# -- the request middleware --------------------------------------------------


class MetricsMiddleware:
    """Counts requests by route *template*, so label sets stay bounded however
    many projects are asked for.  Pure ASGI: no extra task or copy per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        def record(status: int, sent: int, seconds: float) -> None:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            requests, duration, served = self._bound(template, scope["method"], status)
            requests.inc()
            duration.observe(seconds)
            if sent:
                served.inc(sent)

        await watch_response(self.app, scope, receive, send, record)

    def _bound(self, route: str, method: str, status: int) -> tuple[Any, Any, Any]:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            if method not in _METHODS:
                method = "OTHER"
            children = (
                REQUESTS.labels(route, method, str(status)),
                REQUEST_DURATION.labels(route),
                BYTES_SERVED.labels(route),
            )
            if len(self._children) < 4096:
                self._children[key] = children
        return children


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# -- scrape ----------------------------------------------------------------------


class ReviewQueueCollector:
    """The review queue, counted from the database when scraped (not a process-local number)."""

    def __init__(self, sessions: Callable[[], Any], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "indexguard_review_queue_length",
            "Items waiting for a reviewer: quarantined projects and held releases.",
            labels=["kind"],
        )
        try:
            with self.sessions() as session:
                projects = session.scalar(
                    select(func.count()).select_from(Project).where(Project.state == "quarantined")
                )
                # A hold whose cooldown has run out no longer blocks anything.
                releases = session.scalar(
                    select(func.count()).select_from(Release).where(
                        Release.state == "held",
                        or_(Release.held_until.is_(None), Release.held_until > self.clock()),
                    )
                )
        except Exception:  # a scrape must not fail because the database is briefly away
            return
        gauge.add_metric(["project"], projects or 0)
        gauge.add_metric(["release"], releases or 0)
        yield gauge


def scrape(per_app: CollectorRegistry) -> bytes:
    """The exposition text: process metrics (summed over workers if multiprocess) plus ``per_app``."""
    if os.environ.get(MULTIPROC_ENV):
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
        body = generate_latest(shared)
    else:
        body = generate_latest(REGISTRY)
    return body + generate_latest(per_app)


def metrics_endpoint(sessions: Callable[[], Any], clock: Callable[[], datetime]) -> Callable[..., Any]:
    """A route handler serving ``/metrics`` for an app whose database is ``sessions``."""
    from fastapi.responses import Response

    per_app = CollectorRegistry(auto_describe=False)
    per_app.register(ReviewQueueCollector(sessions, clock))

    def metrics() -> Response:
        return Response(scrape(per_app), media_type=CONTENT_TYPE_LATEST)

    return metrics
