"""Freed memory goes back to the system after large jobs, but never more often than the interval allows."""

from __future__ import annotations

import pytest

from mirror import memory


@pytest.mark.skipif(not memory.TRIM_SUPPORTED, reason="not glibc: nothing to trim")
def test_trims_once_per_interval(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(memory, "_last_trim", 0.0)
    assert memory.release_free_memory() is True
    assert memory.release_free_memory() is False  # a burst of cold pages costs one trim
    clock[0] += memory.TRIM_INTERVAL_SECONDS
    assert memory.release_free_memory() is True
