"""Bounds on what unknown names may cost: a brief memory of "not found", and a
per-client budget of first screenings.

Without them, 300 random names cost 300 upstream requests, and again on
every repeat; and one client could keep the screening room full alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Callable


class NotFoundCache:
    """Names upstream said it does not have, remembered for ``ttl`` seconds."""

    def __init__(self, ttl: float, monotonic: Callable[[], float], max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self.max_entries = max_entries
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, name: str) -> bool:
        with self._lock:
            until = self._until.get(name)
            if until is None:
                return False
            if self.monotonic() < until:
                return True
            del self._until[name]
            return False

    def add(self, name: str) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._until[name] = self.monotonic() + self.ttl
            self._until.move_to_end(name)
            while len(self._until) > self.max_entries:
                self._until.popitem(last=False)

    def discard(self, name: str) -> None:
        with self._lock:
            self._until.pop(name, None)


class ClientBudget:
    """At most ``per_minute`` first screenings per client in any 60 seconds."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, monotonic: Callable[[], float], max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.monotonic = monotonic
        self.max_clients = max_clients
        self._spent: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str | None) -> float | None:
        """Spend one screening for ``client``; None if allowed, else seconds until it would be."""
        if self.per_minute <= 0 or client is None:
            return None
        now = self.monotonic()
        with self._lock:
            spent = self._spent.setdefault(client, deque())
            self._spent.move_to_end(client)
            while spent and now - spent[0] >= self.WINDOW:
                spent.popleft()
            if len(spent) >= self.per_minute:
                return self.WINDOW - (now - spent[0])
            spent.append(now)
            while len(self._spent) > self.max_clients:
                self._spent.popitem(last=False)
        return None
