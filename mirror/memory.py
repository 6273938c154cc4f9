"""Giving memory back to the system after the rare large jobs (a big project's first page, a wheel's scan).

A first page of a big project parses, builds and renders tens of thousands
of entries: tens of MiB live for a moment, then freed.  glibc keeps freed
memory for reuse, so without a trim the server's resident size stays at its
highest point for good.  Both calls do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time

_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
# Blocks this big or bigger get pages of their own, which go back to the system when freed.  glibc
# starts at 128 KiB but raises the threshold each time such a block is freed (up to 32 MiB), after
# which a warm page's body and buffers come from the heap and stay there.  16 connections loading
# the workload's four largest pages, 8 s each, four rounds: 163-169 MiB resident after without the
# fixed threshold, 159-161 with it, the same req/s within the machine's noise.
MMAP_THRESHOLD = 256 * 1024
# The cycle collector runs after this many container objects were allocated and not freed (CPython:
# 700).  A big page builds tens of thousands of objects that reference counting frees anyway; at 700
# the collector walked them again and again.  Building and rendering the workload's 7 largest pages,
# eight rounds in one process: median 2.48 s of CPU as CPython sets it, 2.30 with start-up frozen,
# 2.14 with this as well.
GC_THRESHOLD = 10_000
# Trims at most this often: a burst of cold pages costs one trim, not one each.
TRIM_INTERVAL_SECONDS = 1.0

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 - glibc only
except (OSError, AttributeError):
    _LIBC = None
TRIM_SUPPORTED = _LIBC is not None

_last_trim = 0.0
_trim_lock = threading.Lock()


def limit_malloc_arenas(arenas: int = 1) -> None:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does): by default, one for every thread.

    Each worker thread otherwise gets an arena of its own, and a server
    with a thread pool holds tens of MiB of freed but unreturned memory.
    One arena, not two: a big page's transient buffers are allocated on
    the worker threads, and a second arena shared by those threads kept
    as much as none (43 cold pages of the real-index workload, in one
    process: 184 MiB resident after with two arenas, 147-156 with one, at
    no cost in CPU; the interpreter holds the GIL around most mallocs, so
    a single arena's lock is rarely contended).  Also fixes the size from
    which blocks are mapped on their own (``MMAP_THRESHOLD``).  Worker
    processes inherit both settings through the environment.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, arenas)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_free_memory() -> bool:
    """Return freed heap pages to the system (``malloc_trim``), at most once per TRIM_INTERVAL_SECONDS.

    Costs a few milliseconds on a large heap, so it is called after the
    large jobs only, never on the warm path.  True when it trimmed.
    """
    global _last_trim
    if _LIBC is None:
        return False
    with _trim_lock:
        now = time.monotonic()
        if now - _last_trim < TRIM_INTERVAL_SECONDS:
            return False
        _last_trim = now
    _LIBC.malloc_trim(0)
    return True


def settle_after_start() -> None:
    """Take what start-up built (imports, the app, the corpus) out of the collector's walks, for good.

    Called once by a server process, and by the page process, when its
    corpus is loaded: those objects live as long as the process, and every
    full collection walked them (the workload's 43 cold pages built in one
    process from stored upstream copies, six runs each: median 4.73 s of CPU
    without, 4.37 s with).
    Not for a process that starts many apps (the tests): what is frozen is
    never collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
