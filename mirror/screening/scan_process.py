"""Content scans in a worker process of their own.

A scan is CPU work on a stranger's archive.  Inside the server a hang or a
crash in native code would stop the server with it, yara-x and the heap a
scan grew would stay in the server for good, and a scan would hold the
interpreter lock while pages wait.  A worker process is killed at a hard time
limit, starts on first use and exits when idle, so what it grew goes back to
the system.

One worker runs several scans at once, on threads, with the rule the server
had: a background scan waits between members while a scan a client waits for
runs.  The parent sends jobs as pickles (it is the trusted side); the worker
answers in JSON only, so a worker subverted by what it scans cannot make the
server unpickle anything.  It gets a bare environment (no tokens, no
database URL) and dies with its parent.

A job that runs over its hard limit has its worker killed; the other jobs in
that worker are sent again to a fresh one.  A job whose worker died under it
twice, or whose answer is over ``max_report_bytes``, ends as an incomplete
scan: a finding that holds the release, never a pass.

Run as ``python -m mirror.screening.scan_process PARENT_PID``: the worker's side.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from detectors.findings import Finding
from mirror.content.config import ScanConfig
from mirror.frames import HEAD, IdleTimer, die_with_parent, kill, read_exactly, send_frame
from mirror.content.rules import RuleSet
from mirror.content.scan import Artifact, scan_release, stopped_release

log = logging.getLogger(__name__)

# What a worker inherits: enough to find Python and its packages, nothing secret.
_KEPT_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "MALLOC_ARENA_MAX",
             "MALLOC_MMAP_THRESHOLD_")
_POLL = 0.1  # seconds between looks at a job's clock
_CRASHES = 2  # a job whose worker died under it this often ends as incomplete
_THREADS = 8  # scans a worker runs at once, per kind (client, background)


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


@dataclass
class _Job:
    id: int
    artifact: Artifact
    previous: Mapping[str, Any] | None
    config: ScanConfig
    background: bool
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    stopped: tuple[str, str] | None = None  # (reason, detail): ended as incomplete
    crashes: int = 0
    proc: subprocess.Popen[bytes] | None = None  # the worker it was last sent to


class ScanProcess:
    """One worker process and the scans running in it.

    Started on the first job; stopped after ``idle_seconds`` without one.  A
    job's hard limit is its scan's ``max_seconds`` plus ``kill_grace``; a
    background job's clock stops while a client's job runs beside it (it
    waits then, as in the server).
    """

    worker_module = __name__  # what ``python -m`` runs as the worker

    def __init__(self, rules: RuleSet, *, idle_seconds: float, kill_grace: float, max_report_bytes: int,
                 name: str) -> None:
        self.rules = rules
        self.kill_grace = kill_grace
        self.max_report_bytes = max_report_bytes
        self.name = name
        self._lock = threading.Lock()  # the process, the jobs in it, the idle timer
        self._write = threading.Lock()  # one frame at a time into the worker's pipe
        self._proc: subprocess.Popen[bytes] | None = None
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._idle = IdleTimer(idle_seconds, self._stop_if_idle)
        self._closed = False

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def load(self) -> int:
        with self._lock:
            return len(self._jobs)

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig,
             background: bool) -> ScanOutcome:
        job = _Job(next(self._ids), artifact, previous, config, background)
        started = time.monotonic()
        self._submit(job)
        limit, spent = config.max_seconds + self.kill_grace, 0.0
        while True:
            before = time.monotonic()
            if job.done.wait(_POLL):
                break
            if not (background and self._client_running()):
                spent += time.monotonic() - before
            if spent > limit:
                self._kill_for(job, f"the scan ran over {limit:g} s and its process was killed")
        if job.stopped is not None:
            reason, detail = job.stopped
            log.warning("content scan of %s in %s stopped: %s", artifact.filename, self.name, detail)
            report = stopped_release(artifact, previous, reason, detail, ruleset_version=self.rules.version,
                                     seconds=time.monotonic() - started)
            return outcome_of(report.to_dict())
        assert job.answer is not None
        if "error" in job.answer:
            raise RuntimeError(f"content scan of {artifact.filename} failed in {self.name}: {job.answer['error']}")
        return outcome_of(job.answer["report"])

    def start(self) -> None:
        """Start the worker now if none runs (it pays its imports before a client's scan, not during it)."""
        with self._lock:
            if self._closed:
                return
            self._started()
            if not self._jobs:
                self._idle.arm()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._idle.cancel()
            proc, self._proc = self._proc, None
        kill(proc)

    # -- the jobs

    def _client_running(self) -> bool:
        with self._lock:
            return any(not j.background for j in self._jobs.values())

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the mirror is shutting down")
            self._idle.cancel()
            self._jobs[job.id] = job
        self._send_job(job)

    def _send_job(self, job: _Job) -> None:
        with self._lock:
            if job.id not in self._jobs:
                return
            job.proc = self._started()
        self._send(job.proc, {"id": job.id, "scan": (job.artifact, job.previous, job.config),
                              "background": job.background})

    def _end(self, job: _Job, *, answer: dict[str, Any] | None = None, stopped: tuple[str, str] | None = None) -> None:
        """Take ``job`` out (if it still is in) and wake its caller; arm the idle timer when none is left."""
        with self._lock:
            if self._jobs.pop(job.id, None) is None:
                return
            job.answer, job.stopped = answer, stopped
            if not self._jobs:
                self._idle.arm()
        job.done.set()

    def _kill_for(self, job: _Job, detail: str) -> None:
        """Kill the worker that runs ``job`` over its limit; the others in it start again in a fresh one."""
        proc = job.proc
        self._end(job, stopped=("time", detail))
        kill(proc)  # its reader sees the end and sends the others again

    def _worker_ended(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._proc is proc:
                self._proc = None
            left = [j for j in self._jobs.values() if j.proc is proc]
            closed = self._closed
        status = proc.wait()
        for job in left:
            job.crashes += 1
            if closed:  # nothing is stored: the file is scanned when next asked for
                self._end(job, answer={"error": "the mirror is shutting down"})
            elif job.crashes >= _CRASHES:
                self._end(job, stopped=("crashed", f"the scan's process ended (status {status}) under it twice"))
            else:
                self._send_job(job)

    def _stop_if_idle(self) -> None:
        with self._lock:
            if self._jobs:
                return
            proc, self._proc = self._proc, None
        kill(proc)

    # -- the process

    def _started(self) -> subprocess.Popen[bytes]:
        """The live worker, started if there is none (called holding ``_lock``)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
        proc = subprocess.Popen([sys.executable, "-m", self.worker_module, str(os.getpid())], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, close_fds=True)
        self._proc = proc
        threading.Thread(target=self._read, args=(proc,), name=f"{self.name} reader", daemon=True).start()
        self._send(proc, {"rules": self.rules.sources, "version": self.rules.version})
        return proc

    def _send(self, proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        # A worker gone meanwhile: its reader sees the end and sends the jobs again.
        send_frame(proc, self._write, message.get("id", 0), pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """Answers from one worker until it ends; then what was running in it is sent again."""
        assert proc.stdout is not None
        stream = proc.stdout
        try:
            while (head := read_exactly(stream, HEAD.size)) is not None:
                job_id, size = HEAD.unpack(head)
                with self._lock:
                    job = self._jobs.get(job_id)
                if size > self.max_report_bytes:
                    if not _skip(stream, size):
                        break
                    if job is not None:
                        self._end(job, stopped=("report-size", f"the scan's report is {size} bytes, "
                                                               f"over {self.max_report_bytes}"))
                    continue
                payload = read_exactly(stream, size)
                if payload is None:
                    break
                answer = json.loads(payload)
                if job is not None:
                    self._end(job, answer=answer if isinstance(answer, dict) else {"error": "not a report"})
        except (OSError, ValueError):
            pass  # a broken frame: the worker is killed like a dead one
        kill(proc)
        self._worker_ended(proc)


def _skip(stream: IO[bytes], count: int) -> bool:
    while count:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return False
        count -= len(chunk)
    return True


class ScanProcesses:
    """Scans in ``processes`` worker processes, each job in the least busy one."""

    def __init__(self, rules: RuleSet, *, processes: int, idle_seconds: float, kill_grace: float,
                 max_report_bytes: int) -> None:
        self.workers = [
            ScanProcess(rules, idle_seconds=idle_seconds, kill_grace=kill_grace, max_report_bytes=max_report_bytes,
                        name=f"scan worker {i + 1}")
            for i in range(processes)
        ]

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig, *,
             pause: Callable[[], None] | None) -> ScanOutcome:
        """``pause`` None: a client waits for this scan; otherwise it is a background one (it waits in the worker)."""
        worker = min(self.workers, key=lambda w: w.load)
        return worker.scan(artifact, previous, config, background=pause is not None)

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def pids(self) -> list[int]:
        return [pid for w in self.workers if (pid := w.pid) is not None]

    def close(self) -> None:
        for w in self.workers:
            w.close()


class InProcessScans:
    """Scans in the server's own threads (``[content] scan_processes = 0``, and the library's callers)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def scan(self, artifact: Artifact, previous: Mapping[str, Any] | None, config: ScanConfig, *,
             pause: Callable[[], None] | None) -> ScanOutcome:
        report = scan_release([artifact], previous, config, rules=self.rules, pause=pause)
        return ScanOutcome(report.to_dict(), list(report.findings), report.complete)

    def start(self) -> None:
        return None

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        return None


Scans = ScanProcesses | InProcessScans  # where content scans run: ``[content] scan_processes``


# -- the worker's side ---------------------------------------------------------


class _Worker:
    """Runs the jobs that come in, client ones first: background ones wait between members while any runs."""

    def __init__(self, outgoing: IO[bytes]) -> None:
        self.outgoing = outgoing
        self.write = threading.Lock()
        self.clients = 0
        self.no_clients = threading.Condition()
        self.rules: RuleSet | None = None
        self.pools = {kind: ThreadPoolExecutor(_THREADS, thread_name_prefix=f"scan-{kind}")
                      for kind in ("client", "background")}

    def take(self, message: dict[str, Any]) -> None:
        if "rules" in message:
            self.rules = RuleSet(message["rules"])
            if self.rules.version != message["version"]:
                raise SystemExit("scan worker: the rules changed under the server")
            self.rules.rules  # noqa: B018 - compiled now: a worker starts ahead of its first scan (``start``)
            return
        background = bool(message["background"])
        if not background:
            with self.no_clients:
                self.clients += 1  # counted from now, so a background job queued behind it waits too
        self.pools["background" if background else "client"].submit(self.run, message)

    def run(self, message: dict[str, Any]) -> None:
        artifact, previous, config = message["scan"]
        background = bool(message["background"])
        try:
            assert self.rules is not None, "rules come first"
            report = scan_release([artifact], previous, config, rules=self.rules,
                                  pause=self.wait_for_clients if background else None)
            answer: dict[str, Any] = {"report": report.to_dict()}
        except Exception as exc:  # noqa: BLE001 - told to the parent, which logs it and fails the request
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            if not background:
                with self.no_clients:
                    self.clients -= 1
                    self.no_clients.notify_all()
        data = json.dumps(answer, separators=(",", ":")).encode()
        with self.write:
            self.outgoing.write(HEAD.pack(message["id"], len(data)) + data)
            self.outgoing.flush()

    def wait_for_clients(self) -> None:
        with self.no_clients:
            self.no_clients.wait_for(lambda: self.clients == 0)


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    # The answers own the real stdout; anything a library prints goes to stderr.
    outgoing = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    worker = _Worker(outgoing)
    incoming = sys.stdin.buffer
    while (head := read_exactly(incoming, HEAD.size)) is not None:
        _, size = HEAD.unpack(head)
        payload = read_exactly(incoming, size)
        if payload is None:
            break
        worker.take(pickle.loads(payload))
    os._exit(0)  # the parent closed the pipe or is gone: running scans end with the process


if __name__ == "__main__":
    main()
