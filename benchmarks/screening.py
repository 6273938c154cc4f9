"""What screening costs: on a project's first request, and on a warm one.

Issue 4 promises that screening adds at most 50 ms (median) to the first
request of a project, not counting the time upstream takes to answer, and
nothing measurable to a warm request.  Upstream time is excluded because it
belongs to the network, not to us; everything else the first request does
because of screening is counted: reading back the stored upstream page,
gathering facts, the detectors, the policy, storing the decision with its
evidence, and re-filtering the page once the decision exists.

(a) In-process, on SQLite, against the local upstream on loopback: each
    phase is timed by wrapping it, over fresh projects.
(b) Over HTTP: the same warm pages from a stock mirror and from one whose
    screening is switched off (its verdict is a constant "allowed"), in
    interleaved runs, so the difference can be read against the run-to-run
    noise of each.

Run: python -m benchmarks.screening [--quick] [--projects N] [--preload MODULE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import common
from benchmarks.common import JSON_HEADERS

FLOOR_FIRST_MS = 50.0


# -- (a) first request --------------------------------------------------------------


class PhaseTimer:
    """Wraps callables so that each call adds its duration to a named phase."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    def wrap(self, phase: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.totals[phase] += time.perf_counter() - began

        return timed

    def take(self) -> dict[str, float]:
        taken, self.totals = dict(self.totals), defaultdict(float)
        return taken


def _fake_request(name: str) -> dict[str, Any]:
    """What the route passes on for the record of a first screening (``web.client_info.request_info``)."""
    return {"time": "", "client": "127.0.0.1", "user_agent": "pip/26.0 indexguard-benchmark", "path": f"/simple/{name}/"}


def first_requests(work: Path, upstream: str, names: Sequence[str], preload: Sequence[str]) -> dict[str, Any]:
    """Screen every name through ``Services.project_page``, timing each phase."""
    common.apply_preload(preload)
    import detectors
    from mirror.screening import policy as policy_mod
    from mirror.container import Services
    from tests.support.running import mirror_settings

    settings = mirror_settings(upstream_url=upstream, database_url=f"sqlite:///{work / 'screen.db'}",
                               storage=work / "screen-data")
    services = Services(settings)
    timer = PhaseTimer()
    up, pages, screening = services.upstream, services.pages, services.screening
    up.fetch_project = timer.wrap("upstream page", up.fetch_project)
    up.fetch_project_json = timer.wrap("upstream JSON", up.fetch_project_json)
    pages.fetch_new = timer.wrap("page fetch", pages.fetch_new)
    pages.store_fetched = timer.wrap("page store", pages.store_fetched)
    pages.upstream_page = timer.wrap("read stored page", pages.upstream_page)
    pages.rebuild = timer.wrap("re-filter page", pages.rebuild)
    screening.gather = timer.wrap("gather facts", screening.gather)
    screening._store_first_decision = timer.wrap("store decision", screening._store_first_decision)
    originals = (detectors.run_all, policy_mod.decide)
    detectors.run_all = timer.wrap("detectors", detectors.run_all)
    policy_mod.decide = timer.wrap("policy", policy_mod.decide)
    try:
        began = time.perf_counter()
        services.detectors.corpus()  # loaded once per process, at the first screening
        corpus_s = time.perf_counter() - began
        samples = []
        for name in names:
            began, cpu_began = time.perf_counter(), time.thread_time()
            services.projects.page(name, _fake_request(name))  # raises when refused
            total = time.perf_counter() - began
            p = timer.take()
            # The page and the project JSON are fetched at the same time: the longer one is the wait.
            upstream_s = max(p.get("upstream page", 0.0), p.get("upstream JSON", 0.0))
            # What a plain proxy does anyway: parse the page (inside its fetch), store and render it.
            page_only = p.get("page fetch", 0.0) - p.get("upstream page", 0.0) + p.get("page store", 0.0)
            cpu = time.thread_time() - cpu_began
            samples.append({
                "total CPU (this thread)": cpu,
                "total": total,
                "upstream": upstream_s,
                "page (no screening)": page_only,
                "screening": total - upstream_s - page_only,
                "gather facts": max(0.0, p.get("gather facts", 0.0) - p.get("upstream JSON", 0.0)),
                "detectors": p.get("detectors", 0.0),
                "policy": p.get("policy", 0.0),
                "store decision": p.get("store decision", 0.0),
                "read stored page": p.get("read stored page", 0.0),
                "re-filter page": p.get("re-filter page", 0.0),
            })
        warm = _warm_call_costs(services, names)
    finally:
        detectors.run_all, policy_mod.decide = originals
        services.close()
    return {"samples": samples, "corpus_s": corpus_s, "warm": warm}


def _warm_call_costs(services: Any, names: Sequence[str]) -> dict[str, float]:
    """Microseconds per warm lookup: the page answer, and the verdict alone."""
    for name in names:  # make sure every cache is filled
        services.projects.page(name, _fake_request(name))
    costs = {}
    for label, call in (("projects.warm", services.projects.warm), ("screening.project_row", services.screening.project_row)):
        rounds = 20
        began = time.perf_counter()
        for _ in range(rounds):
            for name in names:
                call(name)
        costs[label] = (time.perf_counter() - began) / (rounds * len(names)) * 1e6
    return costs


# -- (b) warm requests over HTTP ----------------------------------------------------


def bypass_screening() -> None:
    """Preload hook for the comparison mirror: every project is allowed, nothing is screened."""
    from mirror.screening.screen import Screening

    # Never screened, so never refused: the gate lets an unscreened public project's page through.
    Screening.screen = lambda self, project, page, request, project_json=None: None  # type: ignore[method-assign]


def warm_requests(work: Path, upstream: str, names: Sequence[str], args: argparse.Namespace,
                  seconds: float, rounds: int) -> dict[str, list[common.LoadResult]]:
    logs = work / "logs"
    mirrors = {}
    procs = []
    try:
        for label, extra in (("with screening", []), ("screening off", ["benchmarks.screening:bypass_screening"])):
            port = common.free_port()
            config = common.write_mirror_config(work / f"{label[:4]}.toml", upstream=upstream,
                                                storage=work / f"data-{port}", port=port)
            procs.append(common.start_mirror(config, port, logs, preload=[*args.preload, *extra], name=f"mirror-{port}"))
            for name in names:
                status, _, body = common.http_get(port, f"/simple/{name}/", JSON_HEADERS)
                if status != 200:
                    raise RuntimeError(f"{label}: /simple/{name}/ answered {status}: {body[:200]!r}")
            mirrors[label] = port
        runs: dict[str, list[common.LoadResult]] = {label: [] for label in mirrors}
        paths = [f"/simple/{n}/" for n in names]
        for _ in range(rounds):
            for label, port in mirrors.items():
                runs[label].append(common.run_load(port, paths, JSON_HEADERS, connections=args.connections,
                                                   seconds=seconds, work=work))
    finally:
        for proc in procs:
            common.stop(proc)
    return runs


# -- the run ------------------------------------------------------------------------


def build_projects(dist_dir: Path, count: int) -> list[str]:
    from tests.support.dists import build_wheel

    dist_dir.mkdir(parents=True, exist_ok=True)
    names = [f"screen-bench-{i:03d}" for i in range(count)]
    for name in names:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            common.make_old(build_wheel(dist_dir, name, version, summary="benchmark project"))
    return names


def run(args: argparse.Namespace) -> dict[str, Any]:
    count = args.projects or (30 if args.quick else 100)
    seconds = args.seconds or (3.0 if args.quick else 5.0)
    rounds = args.rounds or (2 if args.quick else 3)
    with common.temp_workdir("indexguard-bench-screen-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        names = build_projects(work / "dists", count + 20)
        index, upstream = common.start_index_server(work / "dists", work / "logs")
        try:
            first = first_requests(work, upstream, names[:count], args.preload)
            warm = warm_requests(work, upstream, names[count:], args, seconds, rounds)
        finally:
            common.stop(index)
    return report(first, warm, count, seconds, rounds)


def report(first: dict[str, Any], warm: dict[str, list[common.LoadResult]], count: int,
           seconds: float, rounds: int) -> dict[str, Any]:
    samples = first["samples"]
    print(f"\nscreening (a), load average {os.getloadavg()[0]:.1f}: first request of {count} fresh projects, in-process, SQLite, local upstream on loopback; "
          f"corpus loaded once beforehand in {first['corpus_s'] * 1000:.0f} ms")
    rows = []
    for key in samples[0]:
        values = [s[key] for s in samples]
        rows.append([key, f"{common.median_ms(values):.1f}", f"{_quantile(values, 0.9) * 1000:.1f}",
                     f"{max(values) * 1000:.1f}"])
    print("wall-clock times; on a busy machine they include waiting for a CPU, which "
          "'total CPU' (this thread's CPU time, upstream server excluded) does not")
    common.print_table("per-request time (ms); 'screening' = total - upstream - page work a plain proxy also does",
                       ["phase", "median", "p90", "max"], rows)
    median_screen = common.median_ms([s["screening"] for s in samples])

    print(f"\nscreening (b): warm JSON pages over HTTP, {seconds:g} s runs, {rounds} interleaved rounds per mirror")
    rows = []
    for label, runs in warm.items():
        for i, r in enumerate(runs, 1):
            rows.append([label, i, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", r.errors])
    common.print_table("warm requests", ["mirror", "round", "req/s", "p50 ms", "p99 ms", "errors"], rows)
    on, off = (statistics.median(r.rps for r in warm[k]) for k in ("with screening", "screening off"))
    spread = max(_spread(warm["with screening"]), _spread(warm["screening off"]))
    diff = (on - off) / off if off else 0.0
    print(f"median req/s with screening {on:,.0f}, screening off {off:,.0f}: difference {diff:+.1%}; "
          f"run-to-run spread of one mirror up to {spread:.1%}")
    print(f"in-process warm lookups: projects.warm {first['warm']['projects.warm']:.1f} µs, "
          f"screening.project_row (cached) {first['warm']['screening.project_row']:.1f} µs per call")
    # One-sided: screening must not make warm requests slower beyond the noise.
    within_noise = diff >= -max(spread, 0.05)
    checks = [
        ("first request: screening median", f"{median_screen:.1f} ms", f"<= {FLOOR_FIRST_MS:.0f} ms",
         median_screen <= FLOOR_FIRST_MS),
        ("warm request: difference vs screening off", f"{diff:+.1%}", f"within noise ({max(spread, 0.05):.1%})",
         within_noise),
    ]
    common.print_table("floors", ["check", "measured", "floor", "result"],
                       [[a, b, c, "ok" if ok else "MISSED"] for a, b, c, ok in checks])
    return {"first_median_ms": median_screen, "warm_diff": diff, "warm_spread": spread,
            "ok": all(ok for *_, ok in checks)}


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _spread(runs: Sequence[common.LoadResult]) -> float:
    rates = [r.rps for r in runs]
    return (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 and statistics.median(rates) else 0.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.screening", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="30 projects and 3 s runs")
    p.add_argument("--projects", type=int, default=0, help="fresh projects to screen (default 100)")
    p.add_argument("--seconds", type=float, default=0.0, help="seconds per warm run (default 5)")
    p.add_argument("--rounds", type=int, default=0, help="interleaved warm runs per mirror (default 3)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--preload", action="append", default=[],
                   help="module (or module:function) to import first, here and in the mirror processes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if run(parser().parse_args(argv))["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
