"""A real mirror for tests: uvicorn serving the app on 127.0.0.1 in a thread.

Running in-process lets tests inject the clock; the server is still real
HTTP, so pip and uv talk to it as they would in production.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import uvicorn

from mirror.app import create_app
from mirror.container import Services
from mirror.web.connections import server_options
from mirror.config import Settings, settings_from_mapping


@dataclass
class FakeClock:
    """A clock tests move by hand: ages and TTLs without sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    mono: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self.mono += step.total_seconds()


class RunningMirror:
    def __init__(self, settings: Settings, clock: FakeClock | None = None, *, port: int = 0) -> None:
        self.settings = settings
        self.clock = clock or FakeClock()
        self.services = Services(settings, clock=self.clock, monotonic=self.clock.monotonic)
        self.app = create_app(settings, services=self.services)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.simple_url = self.url + "simple/"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", **server_options(settings.server))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> "RunningMirror":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("mirror did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "RunningMirror":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def mirror_settings(
    *, upstream_url: str, database_url: str, storage: Path, **sections: dict[str, Any]
) -> Settings:
    raw: dict[str, dict[str, Any]] = {
        "upstream": {"url": upstream_url, "timeout": 5.0},
        "database": {"url": database_url},
        "storage": {"path": str(storage)},
        # No background audit (nor its online vulnerability service) unless a test asks.
        "audit": {"interval_hours": 0, "vulnerability_service": "none"},
        # No scans ahead of downloads unless a test asks: a test that reads a file's metadata
        # would otherwise race a background download of the file.
        # Held releases are scanned at once, not after a quiet spell ([content] held_scan_quiet).
        "content": {"prefetch_queue": 0, "held_scan_quiet": 0.0},
        # Nor screenings ahead of a request: a test that reads metadata would race them.
        "server": {"screen_ahead": 0},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_mapping(raw)
