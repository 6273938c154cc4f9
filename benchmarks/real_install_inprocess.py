"""Inside a cold mirror on the real index: where a first request's time and the memory go.

``benchmarks.real_install`` measures the mirror from the outside (a real
``serve`` process, pip as the client).  Some questions only an in-process
look answers: how a cold project's time splits between upstream, detectors,
page building and the database, and which lines hold the memory.  This
module answers them in a process of its own, started by ``real_install``,
so that the product code is imported and observed, never edited, and the
instruments (timers, ``tracemalloc``) never run inside the measured server.

The application is the real one (``create_app`` with the same settings the
server got), driven through Starlette's in-process HTTP client, so requests
take the routes a client's would.

* ``phases``: cold page requests for every project of the workload, each
  phase timed by wrapping the function that does it (upstream page and its
  parsing, upstream JSON, detectors, policy, registering releases, building
  and rendering the page, storing the decision), every SQL statement and
  commit timed and counted through SQLAlchemy's events; then a warm request
  of each, and the detectors called directly on the facts they saw.
  Wrapped phases nest (the database runs inside most of them), so the rows
  do not add up to the total.
* ``memory``: run under ``python -X tracemalloc=N``; serves the workload's
  pages and files (blobs pre-seeded in the store, so nothing is downloaded
  twice) and reports the largest live allocations, by line and by the
  project line that caused them.

Each prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
import warnings
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urljoin

warnings.filterwarnings("ignore", message=".*httpx.*", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*httpx2.*")

import detectors  # noqa: E402
from detectors import run as detector_run  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from benchmarks.common import JSON_HEADERS, MIB, ROOT, current_rss_mib  # noqa: E402
from mirror.app import create_app  # noqa: E402
from mirror.config import load_settings  # noqa: E402
from mirror.screening import policy as policy_mod  # noqa: E402
from mirror.serving import pages as pages_mod  # noqa: E402
from mirror.upstream import client as client_mod  # noqa: E402

DETECTOR_REPEATS = 20
SQL_PHASE = "SQL statements (execute)"
COMMIT_PHASE = "commits"


# -- instruments ------------------------------------------------------------------


class PhaseTimer:
    """Times named phases, nested ones apart: each phase's own time excludes the phases it calls.

    Like ``benchmarks.screening.PhaseTimer``, plus two things a real-index
    run needs: the calling thread's CPU time (on a shared 2-core machine the
    wall clock includes waiting for a core) and self times, so that the
    phases of one request are disjoint and add up to its total with
    "other" (code no phase covers).  Each phase runs within one thread.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local = threading.local()
        # phase -> [wall, self wall, CPU, self CPU]
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])

    def enter(self, phase: str) -> None:
        stack = self.local.__dict__.setdefault("stack", [])
        stack.append([phase, time.perf_counter(), time.thread_time(), 0.0, 0.0])

    def exit(self) -> None:
        stack = self.local.__dict__.get("stack")
        if not stack:
            return
        phase, began, cpu_began, child_wall, child_cpu = stack.pop()
        wall, cpu = time.perf_counter() - began, time.thread_time() - cpu_began
        if stack:
            stack[-1][3] += wall
            stack[-1][4] += cpu
        with self.lock:
            total = self.totals[phase]
            total[0] += wall
            total[1] += wall - child_wall
            total[2] += cpu
            total[3] += cpu - child_cpu

    def wrap(self, phase: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter(phase)
            try:
                return func(*args, **kwargs)
            finally:
                self.exit()

        return timed

    def take(self) -> dict[str, list[float]]:
        """{phase: [wall, self wall, CPU, self CPU]} in seconds since the last take."""
        with self.lock:
            taken = {k: list(v) for k, v in self.totals.items()}
            self.totals.clear()
        return taken


class DatabaseMeter:
    """Counts and times what one engine does: statements by verb, commits, pool checkouts."""

    def __init__(self, engine: Engine, timer: PhaseTimer) -> None:
        self.lock = threading.Lock()
        self.timer = timer
        self.reset()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._failed)
        event.listen(engine.pool, "checkout", self._checkout)
        dialect = engine.dialect
        commit = dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            began = time.perf_counter()
            timer.enter(COMMIT_PHASE)
            try:
                commit(dbapi_connection)
            finally:
                timer.exit()
                with self.lock:
                    self.commits += 1
                    self.seconds += time.perf_counter() - began

        dialect.do_commit = timed_commit  # type: ignore[method-assign]

    def reset(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self.checkouts = 0
        self.seconds = 0.0

    def take(self) -> dict[str, Any]:
        with self.lock:
            taken = {"statements": dict(self.statements), "commits": self.commits,
                     "checkouts": self.checkouts, "seconds": self.seconds}
            self.reset()
        return taken

    def _before(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())
        self.timer.enter(SQL_PHASE)

    def _failed(self, context: Any) -> None:
        self.timer.exit()

    def _after(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        self.timer.exit()
        began = conn.info["bench_started"].pop()
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        with self.lock:
            self.statements[verb] += 1
            self.seconds += time.perf_counter() - began

    def _checkout(self, *args: Any) -> None:
        with self.lock:
            self.checkouts += 1


def wrap_attr(timer: PhaseTimer, owner: Any, attrs: str | tuple[str, ...], phase: str, missing: list[str]) -> None:
    """Time ``owner.attr`` (the first of ``attrs`` it has) as ``phase``.

    The code under measurement keeps changing; a name it no longer has is
    reported with the results instead of stopping the benchmark.
    """
    for attr in (attrs,) if isinstance(attrs, str) else attrs:
        func = getattr(owner, attr, None)
        if func is not None:
            setattr(owner, attr, timer.wrap(phase, func))
            return
    missing.append(f"{phase} ({'/'.join((attrs,) if isinstance(attrs, str) else attrs)})")


def keep_facts(func: Callable[..., Any], into: dict[str, Any]) -> Callable[..., Any]:
    """Wrap a detector entry point so that the facts it was given are kept, by project."""

    def kept(facts: Any, *args: Any, **kwargs: Any) -> Any:
        into[facts.name] = facts
        return func(facts, *args, **kwargs)

    return kept


def stored_state(services: Any, project: str) -> str:
    """The project's stored decision (allowed, quarantined, ...), however the code reads it today."""
    row = services.projects.standing(project).row
    return getattr(row, "state", "none") if row is not None else "none"


def pages_here(settings: Any) -> Any:
    """``settings`` with ``[server] page_process`` off: the pages are built in this process, where they are observed.

    What is measured is then the page process's work and memory (``serve``
    runs it in a worker); the server's own memory is ``real_install``'s.
    """
    return settings.model_copy(update={"server": settings.server.model_copy(update={"page_process": False})})


def wait_for_corpus(services: Any) -> float:
    """Seconds until the detectors' corpus is loaded (the lifespan started loading it)."""
    began = time.perf_counter()
    services.detectors.corpus()
    return time.perf_counter() - began


def page_files(body: bytes, page_url: str) -> dict[str, str]:
    """filename -> the file URL resolved against the page's, from a JSON Simple API page."""
    data = json.loads(body)
    return {f["filename"]: urljoin(page_url, f["url"]) for f in data.get("files", [])}


# -- phases ------------------------------------------------------------------------


def phases(config: Path, names: Sequence[str]) -> dict[str, Any]:
    rss = {"imports": current_rss_mib_self()}
    settings = pages_here(load_settings(config))
    app = create_app(settings, server_process=True)  # as `serve` makes it, but for the page process
    services = app.state.services
    timer = PhaseTimer()
    missing: list[str] = []
    facts_seen: dict[str, Any] = {}
    screening, upstream, pages = services.screening, services.upstream, services.pages
    detectors.run_all = keep_facts(detectors.run_all, facts_seen)
    wrap_attr(timer, upstream, "fetch_project", "upstream page (fetch+parse)", missing)
    wrap_attr(timer, client_mod, "parse_project_page", "  parse upstream page", missing)
    wrap_attr(timer, upstream, "fetch_project_json", "upstream JSON (fetch+parse)", missing)
    wrap_attr(timer, screening, "gather", "gather facts (incl. upstream JSON)", missing)
    wrap_attr(timer, detectors, "run_all", "detectors (project)", missing)
    wrap_attr(timer, detectors, "run_release_detectors", "detectors (per release)", missing)
    wrap_attr(timer, policy_mod, "decide", "policy (project)", missing)
    wrap_attr(timer, policy_mod, "decide_release", "policy (per release)", missing)
    wrap_attr(timer, screening, "_store_first_decision", "store decision", missing)
    wrap_attr(timer, pages, "register_releases", "register releases", missing)
    wrap_attr(timer, pages_mod, "build_page", "build page (pins, filter)", missing)
    wrap_attr(timer, pages_mod, "render_bodies", "render + gzip served page", missing)
    wrap_attr(timer, pages_mod, "render_project_json", "  render page JSON (inside render + gzip)", missing)
    wrap_attr(timer, Session, "flush", "ORM flush (any caller, incl. its INSERTs)", missing)
    wrap_attr(timer, gzip, "compress", "gzip.compress (any caller)", missing)
    meter = DatabaseMeter(services.engine, timer)
    samples = []
    with TestClient(app) as client:
        corpus_s = wait_for_corpus(services)
        rss["app + corpus"] = current_rss_mib_self()
        timer.take()
        meter.take()
        for name in names:
            began, cpu_began = time.perf_counter(), time.process_time()
            response = client.get(f"/simple/{name}/", headers=JSON_HEADERS)
            total = time.perf_counter() - began
            sample = {"name": name, "status": response.status_code, "total": total,
                      "cpu": time.process_time() - cpu_began, "bytes": len(response.content),
                      "phases": timer.take(), "db": meter.take()}
            sample["state"] = stored_state(services, name)
            began = time.perf_counter()
            client.get(f"/simple/{name}/", headers=JSON_HEADERS)
            sample["warm"] = time.perf_counter() - began
            sample["warm_db"] = meter.take()
            timer.take()
            samples.append(sample)
        rss["after pages"] = current_rss_mib_self()
    services_detectors = detector_costs(facts_seen, services.detectors.config)
    return {"samples": samples, "corpus_s": corpus_s, "rss": rss, "missing": missing,
            "detectors": services_detectors}


def detector_costs(facts_seen: dict[str, Any], config: Any) -> dict[str, dict[str, float]]:
    """Microseconds per call of the detectors on the facts each project was screened with."""
    costs = {}
    for name, facts in facts_seen.items():
        row = {}
        for label, func in (("run_all", detector_run.run_all), ("run_name_detectors", detector_run.run_name_detectors)):
            times = []
            for _ in range(DETECTOR_REPEATS):
                began = time.perf_counter()
                func(facts, config)
                times.append(time.perf_counter() - began)
            row[label] = statistics.median(times) * 1e6
        costs[name] = row
    return costs


def current_rss_mib_self() -> float:
    return current_rss_mib(os.getpid())


# -- memory ------------------------------------------------------------------------


def memory(config: Path, names: Sequence[str], filenames: Sequence[str], top: int) -> dict[str, Any]:
    if not tracemalloc.is_tracing():
        raise SystemExit("run under python -X tracemalloc=N")
    stages = {"imports": _traced_mib()}
    settings = pages_here(load_settings(config))
    app = create_app(settings, server_process=True)  # as `serve` makes it, but for the page process
    services = app.state.services
    wanted = set(filenames)
    served_files = 0
    with TestClient(app) as client:
        stages["app"] = _traced_mib()
        wait_for_corpus(services)
        gc.collect()
        stages["app + corpus"] = _traced_mib()
        urls = {}
        for name in names:
            response = client.get(f"/simple/{name}/", headers=JSON_HEADERS)
            if response.status_code != 200:
                raise SystemExit(f"/simple/{name}/ answered {response.status_code}: {response.text[:200]}")
            urls.update({f: u for f, u in page_files(response.content, f"/simple/{name}/").items() if f in wanted})
        gc.collect()
        stages["after pages"] = _traced_mib()
        for filename in filenames:
            url = urls.get(filename)
            if url is None:
                raise SystemExit(f"{filename} is not on the mirror's pages")
            response = client.get(url, headers={"Accept-Encoding": "identity"})
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
            served_files += 1
            del response
        gc.collect()
        stages["after files"] = _traced_mib()
        snapshot = tracemalloc.take_snapshot()
        rss = current_rss_mib_self()
        overhead = tracemalloc.get_tracemalloc_memory() / MIB
    snapshot = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    return {
        "stages_traced_mib": stages,
        "traced_mib": sum(s.size for s in snapshot.statistics("filename")) / MIB,
        "rss_mib": rss,
        "tracemalloc_overhead_mib": overhead,
        "files_served": served_files,
        "by_line": _top(snapshot.statistics("lineno"), top),
        "by_project_line": _by_project_line(snapshot, top) if tracemalloc.get_traceback_limit() > 1 else [],
        "by_package": _by_package(snapshot),
    }


def _traced_mib() -> float:
    return tracemalloc.get_traced_memory()[0] / MIB


def _short(filename: str) -> str:
    text = filename
    for marker in ("site-packages/", "/lib/python3."):
        if marker in text:
            text = text.split(marker, 1)[1]
            if marker.startswith("/lib"):
                text = text.split("/", 1)[1] if "/" in text else text
            return text
    root = str(ROOT) + "/"
    return text[len(root):] if text.startswith(root) else text


def _top(stats: Sequence[tracemalloc.Statistic], top: int) -> list[dict[str, Any]]:
    rows = []
    for stat in stats[:top]:
        frame = stat.traceback[0]
        rows.append({"where": f"{_short(frame.filename)}:{frame.lineno}", "mib": stat.size / MIB,
                     "blocks": stat.count})
    return rows


def _is_project(filename: str) -> bool:
    return filename.startswith(str(ROOT / "mirror")) or filename.startswith(str(ROOT / "detectors"))


def _by_project_line(snapshot: tracemalloc.Snapshot, top: int) -> list[dict[str, Any]]:
    """Each allocation charged to the innermost project line on its stack (else its own line).

    A dict built inside ``json.loads`` or SQLAlchemy is then charged to the
    mirror line that asked for it, which is where a change would go.
    """
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for trace in snapshot.traces:
        frames = list(trace.traceback)  # most recent call first
        frame = next((f for f in frames if _is_project(f.filename)), frames[0])
        key = f"{_short(frame.filename)}:{frame.lineno}"
        sizes[key][0] += trace.size
        sizes[key][1] += 1
    ordered = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:top]
    return [{"where": k, "mib": v[0] / MIB, "blocks": v[1]} for k, v in ordered]


def _by_package(snapshot: tracemalloc.Snapshot) -> list[dict[str, Any]]:
    """Live bytes by the package of the allocating line (project code split by sub-package)."""
    sizes: Counter[str] = Counter()
    for stat in snapshot.statistics("filename"):
        name = _short(stat.traceback[0].filename)
        parts = name.split("/")
        if parts[0] in ("mirror", "detectors") and len(parts) > 2:
            key = "/".join(parts[:2])
        elif parts[0] in ("mirror", "detectors"):
            key = name
        else:
            key = parts[0] if len(parts) > 1 else name
        sizes[key] += stat.size
    return [{"package": k, "mib": v / MIB} for k, v in sizes.most_common(15)]


# -- entry -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_install_inprocess")
    parser.add_argument("mode", choices=("phases", "memory"))
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--names", required=True, help="JSON list of project names")
    parser.add_argument("--filenames", default="[]", help="JSON list of files to serve (memory)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    names = json.loads(args.names)
    if args.mode == "phases":
        result = phases(args.config, names)
    else:
        result = memory(args.config, names, json.loads(args.filenames), args.top)
    result["finished_at"] = datetime.now(timezone.utc).isoformat()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
