"""A bounded room for work that may wait on upstream.

A first request for an unknown name can hold a thread for as long as the
upstream timeout.  Run in the shared thread pool, a burst of them made
health checks, cached pages and stored files wait behind them.  Such work
runs here instead: at most ``workers`` at once, at most ``queue`` waiting,
and a clear 503 with ``Retry-After`` beyond that, while everything else
keeps the shared pool to itself.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import anyio
from anyio import CapacityLimiter

from mirror.errors import Busy

T = TypeVar("T")


class Bulkhead:
    def __init__(self, workers: int, queue: int, retry_after: int = 2) -> None:
        self.limiter = CapacityLimiter(workers)
        self.queue = queue
        self.retry_after = retry_after

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` in a worker thread of this room; raise Busy when it is full."""
        if self.limiter.available_tokens == 0 and self.limiter.statistics().tasks_waiting >= self.queue:
            raise Busy(
                "the mirror is busy screening other projects; try again in a moment.",
                retry_after=self.retry_after,
            )
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)
