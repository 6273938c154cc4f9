"""Waiting for what the mirror does on its own threads and processes."""

from __future__ import annotations

import time
from typing import Callable


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (an outcome in the background, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())
