"""What the mirror's worker processes share: length-prefixed frames over a child's pipes, and stopping it.

A frame is a job id and a payload size (``HEAD``), then the payload: the
reader always knows where one answer ends, whatever the answer holds.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from typing import IO, Callable

HEAD = struct.Struct(">QI")  # job id, payload bytes


def frame(job_id: int, payload: bytes) -> bytes:
    return HEAD.pack(job_id, len(payload)) + payload


def send_frame(proc: subprocess.Popen[bytes], lock: threading.Lock, job_id: int, payload: bytes) -> None:
    """Write one frame into ``proc``'s input; a worker gone meanwhile is left to its reader, which sees the end."""
    assert proc.stdin is not None
    try:
        with lock:
            proc.stdin.write(frame(job_id, payload))
            proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


class IdleTimer:
    """Calls ``stop`` once ``seconds`` pass after ``arm`` without a ``cancel``: how a worker ends when idle."""

    def __init__(self, seconds: float, stop: Callable[[], None]) -> None:
        self.seconds = seconds
        self.stop = stop
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        self.cancel()
        self._timer = threading.Timer(self.seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def read_exactly(stream: IO[bytes], count: int) -> bytes | None:
    """``count`` bytes, or None when the stream ends first."""
    data = stream.read(count)
    return data if len(data) == count else None


def read_frame(stream: IO[bytes]) -> tuple[int, bytes] | None:
    """The next (job id, payload), or None when the stream ends."""
    head = read_exactly(stream, HEAD.size)
    if head is None:
        return None
    job_id, size = HEAD.unpack(head)
    payload = read_exactly(stream, size)
    return None if payload is None else (job_id, payload)


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker if the server dies, even mid-job in native code."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent was gone before the call
        os._exit(1)
