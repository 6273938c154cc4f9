"""Content scans in worker processes of their own.

A scan is CPU work on a stranger's archive.  Inside the server it holds the
interpreter lock while page builds wait for it, it leaves yara-x and the heap
it grew in the server for good, and a hang or a crash in native code would
stop the server with it.  A worker process scans on another core, is killed
at a hard time limit, starts on first use and exits when idle, so what it
grew goes back to the system.

The parent sends jobs as pickles (it is the trusted side).  The worker
answers in JSON only: a worker subverted by what it scans cannot make the
server unpickle anything.  It gets a bare environment (no tokens, no
database URL) and dies with its parent.

Run as ``python -m mirror.screening.scan_process``: the worker's side.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from detectors.findings import Finding
from mirror.content.config import ScanConfig
from mirror.content.rules import RuleSet
from mirror.content.scan import Artifact, scan_release, stopped_release

log = logging.getLogger(__name__)

_FRAME = struct.Struct(">I")
# What a worker inherits: enough to find Python and its packages, nothing secret.
_KEPT_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_POLL = 0.25  # seconds between looks at a running worker


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan gives the screening service, wherever it ran."""

    report: dict[str, Any]
    findings: list[Finding]
    complete: bool


def outcome_of(report: Mapping[str, Any]) -> ScanOutcome:
    """The outcome of a report in its stored (``ReleaseReport.to_dict``) form."""
    return ScanOutcome(dict(report), [Finding.from_dict(f) for f in report["findings"]], bool(report["complete"]))


# -- the parent's side ---------------------------------------------------------


class ScanProcess:
    """One worker process and the one job it runs at a time.

    Started on the first job; stopped after ``idle_seconds`` without one.  A
    job whose worker runs longer than the scan's own ``max_seconds`` plus
    ``kill_grace`` (time paused not counted), dies, or answers with more than
    ``max_report_bytes`` ends as an incomplete scan: a finding, never a pass.
    """

    def __init__(self, rules: RuleSet, *, idle_seconds: float, kill_grace: float, max_report_bytes: int,
                 name: str) -> None:
        self.rules = rules
        self.idle_seconds = idle_seconds
        self.kill_grace = kill_grace
        self.max_report_bytes = max_report_bytes
        self.name = name
        self._job = threading.Lock()  # one job at a time
        self._state = threading.Lock()  # the process handle, the pause flag, the idle timer
        self._write = threading.Lock()  # one frame at a time into the worker's pipe
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._idle: threading.Timer | None = None

    @property
    def pid(self) -> int | None:
        with self._state:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig) -> ScanOutcome:
        with self._job:
            started = time.monotonic()
            try:
                proc = self._started()
                self._send(proc, {"scan": (artifact, previous, config)})
                answer = self._answer(proc, config.max_seconds + self.kill_grace)
            except _Stopped as stopped:
                self._kill()
                log.warning("content scan of %s in %s stopped: %s", artifact.filename, self.name, stopped.detail)
                report = stopped_release(artifact, previous, stopped.reason, stopped.detail,
                                         ruleset_version=self.rules.version, seconds=time.monotonic() - started)
                return outcome_of(report.to_dict())
            finally:
                self._arm_idle_timer()
        if "error" in answer:
            raise RuntimeError(f"content scan of {artifact.filename} failed in {self.name}: {answer['error']}")
        return outcome_of(answer["report"])

    def pause(self, paused: bool) -> None:
        """Hold the running scan between members (a client waits for another scan), or let it go on."""
        with self._state:
            self._paused = paused
            proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                self._send(proc, {"pause": paused})
            except _Stopped:
                pass  # gone: the job waiting on it finds out

    def close(self) -> None:
        with self._state:
            if self._idle is not None:
                self._idle.cancel()
        self._kill()

    def _started(self) -> subprocess.Popen[bytes]:
        with self._state:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            if self._proc is not None and self._proc.poll() is None:
                return self._proc
            env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=env, close_fds=True,
            )
            proc, paused = self._proc, self._paused
        self._send(proc, {"rules": self.rules.sources, "version": self.rules.version})
        if paused:
            self._send(proc, {"pause": True})
        return proc

    def _send(self, proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        assert proc.stdin is not None
        try:
            with self._write:
                proc.stdin.write(_FRAME.pack(len(data)) + data)
                proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _Stopped("crashed", f"the scan process is gone ({exc})") from None

    def _answer(self, proc: subprocess.Popen[bytes], limit: float) -> dict[str, Any]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        spent = 0.0

        def wait_readable() -> None:
            nonlocal spent
            while True:
                before = time.monotonic()
                ready, _, _ = select.select([fd], [], [], _POLL)
                with self._state:
                    paused = self._paused
                if not paused:
                    spent += time.monotonic() - before
                if ready:
                    return
                if proc.poll() is not None:
                    raise _Stopped("crashed", f"the scan process ended with status {proc.returncode}")
                if spent > limit:
                    raise _Stopped("time", f"the scan process ran over {limit:g} s and was killed")

        def read(count: int) -> bytes:
            chunks, left = [], count
            while left:
                wait_readable()
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    raise _Stopped("crashed", f"the scan process ended with status {proc.wait()}")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)

        (size,) = _FRAME.unpack(read(_FRAME.size))
        if size > self.max_report_bytes:
            raise _Stopped("report-size", f"the scan's report is {size} bytes, over {self.max_report_bytes}")
        answer = json.loads(read(size))
        if not isinstance(answer, dict):
            raise _Stopped("crashed", "the scan process sent something that is not a report")
        return answer

    def _arm_idle_timer(self) -> None:
        with self._state:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = threading.Timer(self.idle_seconds, self._stop_if_idle)
            self._idle.daemon = True
            self._idle.start()

    def _stop_if_idle(self) -> None:
        if self._job.acquire(blocking=False):  # a job started meanwhile keeps it
            try:
                self._kill()
            finally:
                self._job.release()

    def _kill(self) -> None:
        with self._state:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


class _Stopped(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class ScanProcesses:
    """Scans in worker processes: ``clients`` for scans a client waits on, one more for background scans.

    The background worker is paused between members while any client
    waits for a scan, as an in-process background scan is.
    """

    def __init__(self, rules: RuleSet, *, clients: int, idle_seconds: float, kill_grace: float,
                 max_report_bytes: int) -> None:
        def worker(name: str) -> ScanProcess:
            return ScanProcess(rules, idle_seconds=idle_seconds, kill_grace=kill_grace,
                               max_report_bytes=max_report_bytes, name=name)

        self.client_workers = [worker(f"scan worker {i + 1}") for i in range(clients)]
        self.background = worker("background scan worker")
        self._free: queue.SimpleQueue[ScanProcess] = queue.SimpleQueue()
        for w in self.client_workers:
            self._free.put(w)

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig, *,
             pause: Callable[[], None] | None) -> ScanOutcome:
        """``pause`` None: a client waits for this scan; otherwise it is a background one."""
        if pause is not None:
            return self.background.scan(artifact, previous, config)
        worker = self._free.get()
        try:
            return worker.scan(artifact, previous, config)
        finally:
            self._free.put(worker)

    def clients_waiting(self, waiting: bool) -> None:
        self.background.pause(waiting)

    def pids(self) -> list[int]:
        return [pid for w in [*self.client_workers, self.background] if (pid := w.pid) is not None]

    def close(self) -> None:
        for w in [*self.client_workers, self.background]:
            w.close()


class InProcessScans:
    """Scans in the server's own threads (``[content] scan_processes = 0``, and the library's callers)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig, *,
             pause: Callable[[], None] | None) -> ScanOutcome:
        report = scan_release([artifact], previous, config, rules=self.rules, pause=pause)
        return ScanOutcome(report.to_dict(), list(report.findings), report.complete)

    def clients_waiting(self, waiting: bool) -> None:
        return None  # ``pause`` does it

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        return None


# -- the worker's side ---------------------------------------------------------


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker if the server dies, even mid-scan in native code."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent was gone before the call
        os._exit(1)


def _worker(incoming: IO[bytes], outgoing: IO[bytes]) -> None:
    may_run = threading.Event()
    may_run.set()
    jobs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def read() -> None:
        while (frame := _read_frame(incoming)) is not None:
            message = pickle.loads(frame)
            if "pause" in message:
                (may_run.clear if message["pause"] else may_run.set)()
            else:
                jobs.put(message)
        os._exit(0)  # the parent closed the pipe or is gone

    threading.Thread(target=read, name="scan-worker-reader", daemon=True).start()
    rules: RuleSet | None = None
    while True:
        job = jobs.get()
        if "rules" in job:
            rules = RuleSet(job["rules"])
            if rules.version != job["version"]:
                raise SystemExit("scan worker: the rules changed under the server")
            continue
        assert rules is not None, "rules come first"
        artifact, previous, config = job["scan"]
        try:
            report = scan_release([artifact], previous, config, rules=rules, pause=may_run.wait)
            answer: dict[str, Any] = {"report": report.to_dict()}
        except Exception as exc:  # noqa: BLE001 - told to the parent, which logs and fails the request
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(answer, separators=(",", ":")).encode()
        outgoing.write(_FRAME.pack(len(data)) + data)
        outgoing.flush()


def main() -> None:
    _die_with_parent(int(sys.argv[1]))
    # The answers own the real stdout; anything a library prints goes to stderr.
    outgoing = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _worker(sys.stdin.buffer, outgoing)


if __name__ == "__main__":
    main()
