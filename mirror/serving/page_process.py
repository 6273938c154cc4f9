"""Project pages fetched, screened, built and stored in a worker process of its own.

Building a big project's page (tens of thousands of files: parse, screen,
pin, render) makes tens of MiB of small objects for a moment.  Freed, they
leave the server's heap fragmented, and a server that built the 43 pages of
an ML stack stayed about 50 MiB bigger for good.  The worker does that work
on its own copy of the services (same settings, same database and store);
the server gets back the stored page's bytes and keeps nothing else.  The
worker also takes the parsing off the server's interpreter lock, so warm
requests do not wait behind a cold page.

A never-seen project's page comes back as soon as it is rendered; its pins
are written and committed after (they cost about as long as a client takes
to read a big page), and the file look-ups that find nothing meanwhile wait
for that commit (``wait_for_stores``).

The worker starts with the server (``start``), runs several builds at once
on threads, and exits after ``idle_seconds`` without one, so its memory goes
back; the next build starts it again.  A worker not up within
``start_timeout`` seconds, or a build that runs over ``timeout`` seconds
once it is, has the worker killed; every build in it then fails as
``PageUnavailable`` (the client is told to retry), as it does when the
worker dies.  The parent sends its settings once (a pickle: the parent is
the trusted side) and jobs as JSON; answers are JSON plus the page's bytes,
so the server never unpickles anything.

Run as ``python -m mirror.serving.page_process``: the worker's side.
"""

from __future__ import annotations

import itertools
import json
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from mirror.config import Settings
from mirror.container import Services
from mirror.frames import IdleTimer, frame, kill, read_frame, send_frame
from mirror.memory import settle_after_start
from mirror.serving.page_builder import PageBuilder
from mirror.serving.pages import Answer, PageUnavailable, ServedPage

log = logging.getLogger(__name__)

_LENGTH = 4  # bytes of the JSON header's length in an answer


@dataclass
class _Call:
    id: int
    message: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    page: ServedPage | None = None
    failure: str | None = None  # why no answer came: raised as PageUnavailable
    error: str | None = None  # the worker raised something else: raised as RuntimeError
    proc: subprocess.Popen[bytes] | None = None  # the worker it was sent to


@dataclass
class _Store:
    """A page answered before its commit: the worker is still writing its pins."""

    project: str
    proc: subprocess.Popen[bytes]
    then: list[Callable[[], None]] = field(default_factory=list)  # run once committed (``after_store``)


class PageProcess:
    """The ``Builder`` methods (``mirror.serving.page_builder``), answered by the worker process."""

    worker_module = __name__  # what ``python -m`` runs as the worker
    remote = True

    def __init__(self, settings: Settings, *, idle_seconds: float, timeout: float, start_timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.start_timeout = start_timeout
        self._lock = threading.Lock()  # the process, the calls in it, the idle timer
        self._write = threading.Lock()  # one frame at a time into the worker's pipe
        self._proc: subprocess.Popen[bytes] | None = None
        self._calls: dict[int, _Call] = {}
        self._stores: dict[int, _Store] = {}  # call id -> a page answered, not yet committed
        self._committed = threading.Condition(self._lock)
        self._ready: dict[subprocess.Popen[bytes], threading.Event] = {}  # set once the worker's services are up
        self._ids = itertools.count(1)
        self._idle = IdleTimer(idle_seconds, self._stop_if_idle)
        self._closed = False

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        """Start the worker now (it pays its imports before the first cold page, not during it)."""
        with self._lock:
            if not self._closed:
                self._started()
                self._idle.arm()

    def first(self, project: str, request: Mapping[str, Any]) -> ServedPage | None:
        return self._call({"op": "first", "project": project, "request": dict(request)})

    def current(self, project: str) -> ServedPage | None:
        return self._call({"op": "current", "project": project})

    def rebuild(self, project: str) -> None:
        self._call({"op": "rebuild", "project": project})

    def after_store(self, project: str, then: Callable[[], None]) -> None:
        """Run ``then`` once ``project``'s page is committed: now, or on a thread when the commit comes."""
        with self._lock:
            store = next((s for s in self._stores.values() if s.project == project), None)
            if store is not None:
                store.then.append(then)
                return
        then()

    def wait_for_stores(self) -> bool:
        """Wait until the pages answered before their commit so far are committed; False if there were none.

        A file look-up that finds nothing asks this before it says 404: the
        client may have read a page whose pins are still being written.
        Bounded by the build timeout (a worker that dies ends the wait too).
        """
        with self._lock:
            waiting = set(self._stores)
            if not waiting:
                return False
            self._committed.wait_for(lambda: not waiting & self._stores.keys(), timeout=self.timeout)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._idle.cancel()
            proc, self._proc = self._proc, None
        _stop(proc)

    # -- the calls

    def _call(self, message: dict[str, Any]) -> ServedPage | None:
        call = _Call(next(self._ids), message)
        with self._lock:
            if self._closed:
                raise PageUnavailable("the mirror is shutting down")
            self._idle.cancel()
            proc = call.proc = self._started()
            ready = self._ready[proc]
            self._calls[call.id] = call
        send_frame(proc, self._write, call.id, json.dumps(message).encode())
        # The clock of a build starts once its worker is up (a fresh one first pays its imports).
        if not ready.wait(self.start_timeout):
            log.warning("page process: not ready after %g s; killing it", self.start_timeout)
            self._end(call, failure=f"the page process did not start within {self.start_timeout:g} s")
            kill(proc)
        elif not call.done.wait(self.timeout):
            log.warning("page process: %s of %s ran over %g s; killing the worker",
                        message["op"], message["project"], self.timeout)
            self._end(call, failure=f"building the page took over {self.timeout:g} s and was stopped")
            kill(proc)  # its reader sees the end and fails the other calls in it
        if call.failure is not None:
            raise PageUnavailable(call.failure)
        if call.error is not None:
            raise RuntimeError(f"page process: {message['op']} of {message['project']} failed: {call.error}")
        return call.page

    def _end(self, call: _Call, **outcome: Any) -> None:
        with self._lock:
            if self._calls.pop(call.id, None) is None:
                return
            for key, value in outcome.items():
                setattr(call, key, value)
            if not self._calls:
                self._idle.arm()
        call.done.set()

    def _stop_if_idle(self) -> None:
        with self._lock:
            if self._calls or self._stores or self._closed:
                return
            proc, self._proc = self._proc, None
        _stop(proc)

    # -- the process

    def _started(self) -> subprocess.Popen[bytes]:
        """The live worker, started if there is none (called holding ``_lock``)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        # It inherits the server's environment and stderr (its log lines join the server's).
        proc = subprocess.Popen([sys.executable, "-m", self.worker_module], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, close_fds=True)
        self._proc = proc
        self._ready[proc] = threading.Event()
        threading.Thread(target=self._read, args=(proc,), name="page process reader", daemon=True).start()
        send_frame(proc, self._write, 0, pickle.dumps(self.settings, protocol=pickle.HIGHEST_PROTOCOL))
        return proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """Answers from one worker until it ends; then the calls still in it fail."""
        assert proc.stdout is not None
        try:
            while (got := read_frame(proc.stdout)) is not None:
                call_id, payload = got
                if call_id == 0:  # the worker's services are up
                    self._ready[proc].set()
                    continue
                outcome = _outcome(payload)
                with self._lock:
                    call = self._calls.get(call_id)
                    if call is not None and outcome.pop("pending"):
                        self._stores[call_id] = _Store(call.message["project"], proc)
                if call is not None:
                    self._end(call, **outcome)
                else:
                    self._stored(call_id, outcome)
        except (OSError, ValueError, KeyError, TypeError):
            log.exception("page process: a broken answer; killing the worker")
        kill(proc)
        with self._lock:
            if self._proc is proc:
                self._proc = None
            self._ready.pop(proc).set()
            left = [c for c in self._calls.values() if c.proc is proc]
            for call_id in [i for i, s in self._stores.items() if s.proc is proc]:
                log.error("page process: ended before it committed the page of %s", self._stores.pop(call_id).project)
            self._committed.notify_all()
        status = proc.wait()
        for call in left:
            self._end(call, failure=f"the page process ended (status {status}) before it answered")

    def _stored(self, call_id: int, outcome: dict[str, Any]) -> None:
        """The worker's last word on a page it answered early: committed, or failed after all."""
        with self._lock:
            store = self._stores.pop(call_id, None)
            self._committed.notify_all()
            if not self._calls and not self._stores:
                self._idle.arm()
        if store is None:
            return
        problem = outcome["failure"] or outcome["error"]
        if problem:  # the page in the client's hands lists files the mirror has not pinned: they 404
            log.error("page process: the page of %s was served, but storing it failed: %s", store.project, problem)
            return
        for then in store.then:
            threading.Thread(target=_quietly, args=(then,), name="after page store", daemon=True).start()


def _quietly(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:  # noqa: BLE001 - follow-up work of a served page: logged, the page stands
        log.exception("page process: work after a page's commit failed")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Close the worker's input (it finishes what runs and exits); kill it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        kill(proc)


# -- answers: a JSON header, then the page's bytes -------------------------------


def encode_answer(
    *, page: ServedPage | None = None, failure: str | None = None, error: str | None = None, pending: bool = False
) -> bytes:
    """An answer frame's payload; ``pending``: the page is not committed yet, a last frame will say when."""
    header: dict[str, Any] = {"failure": failure, "error": error, "page": None, "pending": pending}
    body = b""
    if page is not None:
        header["page"] = {"project": page.project, "etag": page.etag, "checked_at": page.checked_at.isoformat(),
                          "stale": page.stale, "json_gz": len(page.json_gz), "html_gz": len(page.html_gz)}
        body = page.json_gz + page.html_gz
    head = json.dumps(header).encode()
    return len(head).to_bytes(_LENGTH, "big") + head + body


def _outcome(payload: bytes) -> dict[str, Any]:
    size = int.from_bytes(payload[:_LENGTH], "big")
    header = json.loads(payload[_LENGTH:_LENGTH + size])
    body = memoryview(payload)[_LENGTH + size:]
    described = header["page"]
    page = None
    if described is not None:
        json_end = described["json_gz"]
        if json_end + described["html_gz"] != len(body):
            raise ValueError("page bytes do not match their header")
        page = ServedPage(project=str(described["project"]), json_gz=bytes(body[:json_end]),
                          html_gz=bytes(body[json_end:]), etag=str(described["etag"]),
                          checked_at=datetime.fromisoformat(described["checked_at"]), stale=bool(described["stale"]))
    return {"page": page, "failure": header["failure"], "error": header["error"], "pending": bool(header["pending"])}


# -- the worker's side ------------------------------------------------------------


def _serve(incoming: IO[bytes], outgoing: IO[bytes]) -> None:

    got = read_frame(incoming)
    if got is None:
        return
    settings: Settings = pickle.loads(got[1])
    services = Services(settings)
    services.detectors.corpus()  # part of starting: a build's clock must not pay for it
    settle_after_start()  # every build makes tens of thousands of objects: walk only those
    builder = PageBuilder(pages=services.pages, screening=services.screening)
    write = threading.Lock()
    outgoing.write(frame(0, b""))  # ready: the parent's clocks start now
    outgoing.flush()

    def send(call_id: int, answer: bytes) -> None:
        with write:
            outgoing.write(frame(call_id, answer))
            outgoing.flush()

    def run(call_id: int, message: dict[str, Any]) -> None:
        project = message["project"]
        early = Answer(lambda page: send(call_id, encode_answer(page=page, pending=True)))
        try:
            if message["op"] == "first":
                page = builder.first(project, message["request"], early)
                answer = encode_answer() if early.sent else encode_answer(page=page)  # after an early one: committed
            elif message["op"] == "current":
                answer = encode_answer(page=builder.current(project))
            else:  # rebuild: a decision was taken in the server; this process's copies are old
                services.screening.forget(project)
                services.pages.forget(project)
                builder.rebuild(project)
                answer = encode_answer()
        except PageUnavailable as exc:
            answer = encode_answer(failure=str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the server, which answers 500
            log.exception("page process: %s of %s failed", message["op"], project)
            answer = encode_answer(error=f"{type(exc).__name__}: {exc}")
        send(call_id, answer)

    with ThreadPoolExecutor(max_workers=settings.server.upstream_workers, thread_name_prefix="page") as pool:
        while (got := read_frame(incoming)) is not None:
            pool.submit(run, got[0], json.loads(got[1]))
    services.close()  # the server closed the pipe: what ran has answered


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    incoming, outgoing = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break a frame
    _serve(incoming, outgoing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
