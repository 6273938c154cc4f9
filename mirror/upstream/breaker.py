"""A short circuit breaker per upstream origin: fail fast while upstream is known to be down.

Without it every request for a never-seen project waits the whole upstream
timeout while upstream is down or hanging, and clients (pip gives up after
15 s) see nothing but silence.  After ``failures`` connection failures or
timeouts in a row, all within ``window`` seconds, the origin is *open*: for
``cooldown`` seconds every request fails at once with CircuitOpen.  Then one
trial request is let through (the others still fail fast); its success
closes the breaker, its failure opens it for another cool-down.  Any HTTP
answer, even an error status, proves upstream reachable and clears the count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from mirror.upstream.errors import CircuitOpen

# What a request that finds a trial already running is told to wait.
TRIAL_RETRY_AFTER = 1.0


@dataclass
class _Origin:
    failures: deque[float] = field(default_factory=deque)
    open_until: float | None = None
    trial: bool = False


class CircuitBreaker:
    """Counts connection failures per origin and refuses requests while one is open.

    Keys are opaque strings (``netguard.origin`` of the URL, in practice).
    ``failures`` of 0 disables the breaker.  Thread-safe; one instance is
    meant to be shared by every client that talks to the same upstream.
    """

    def __init__(
        self,
        failures: int,
        window: float,
        cooldown: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 0 or window <= 0 or cooldown <= 0:
            raise ValueError("failures must be >= 0, window and cooldown positive")
        self.failures = failures
        self.window = window
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._origins: dict[str, _Origin] = {}

    def before(self, key: str) -> None:
        """Admit a request to ``key`` or raise CircuitOpen; every admitted call needs ``after``."""
        if not self.failures:
            return
        now = self._monotonic()
        with self._lock:
            state = self._origins.get(key)
            if state is None or state.open_until is None:
                return
            if now < state.open_until:
                remaining = state.open_until - now
                raise CircuitOpen(
                    f"upstream {key} is unreachable ({self.failures} connection failures"
                    f" within {self.window:g} s); not trying again for {remaining:.0f} s",
                    retry_after=remaining,
                )
            if state.trial:
                raise CircuitOpen(
                    f"upstream {key} is unreachable; a trial request is checking whether it is back",
                    retry_after=TRIAL_RETRY_AFTER,
                )
            state.trial = True  # this request is the trial

    def after(self, key: str, *, failed: bool | None) -> None:
        """Record an admitted request's outcome.

        ``failed`` True: it could not connect or timed out; False: upstream
        answered; None: the outcome says nothing about reachability.
        """
        if not self.failures:
            return
        now = self._monotonic()
        with self._lock:
            state = self._origins.get(key)
            if failed is None:
                if state is not None:
                    state.trial = False
                return
            if not failed:
                self._origins.pop(key, None)
                return
            if state is None:
                if len(self._origins) > 10_000:  # bounded: drop what cannot matter any more
                    self._origins.clear()
                state = self._origins.setdefault(key, _Origin())
            was_trial, state.trial = state.trial, False
            state.failures.append(now)
            while len(state.failures) > self.failures:
                state.failures.popleft()
            if was_trial or (
                len(state.failures) == self.failures and now - state.failures[0] <= self.window
            ):
                state.open_until = now + self.cooldown
                state.failures.clear()

    def is_open(self, key: str) -> bool:
        """Whether requests to ``key`` are refused right now (for health and metrics)."""
        with self._lock:
            state = self._origins.get(key)
            return bool(state and state.open_until is not None and self._monotonic() < state.open_until)

