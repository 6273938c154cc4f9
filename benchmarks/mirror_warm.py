"""Warm pages and files: the mirror against a static server holding the same bytes.

A warm request is the common case (every CI job asks for the same pages and
wheels again), and the design promises that it costs no more than reading
stored bytes.  The honest way to check that promise is to serve the very same
bytes from a plain static server in the same run and compare: the ratio says
how much the mirror adds, whatever the machine.

Floors (issue 2, 2-core machine, one worker, 16 connections):
warm JSON page >= 2,000 requests/s; file throughput >= 80% of the static
baseline; peak RSS of the mirror <= 150 MiB.

Run: python -m benchmarks.mirror_warm [--quick] [--seconds S] [--preload MODULE]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urljoin

from benchmarks import common
from benchmarks.common import FILE_HEADERS, HTML_HEADERS, JSON_HEADERS, MIB, StaticRoute

FLOOR_JSON_RPS = 2000.0
FLOOR_FILE_RATIO = 0.80
FLOOR_RSS_MIB = 150.0


def build_upstream(dist_dir: Path, projects: int, versions: int, large_mib: float) -> list[str]:
    """Wheels for ``projects`` small projects and one large one, all back-dated."""
    from tests.support.dists import build_large_wheel, build_wheel

    dist_dir.mkdir(parents=True, exist_ok=True)
    names = [f"warm-bench-{i:02d}" for i in range(projects)]
    for name in names:
        for v in range(versions):
            common.make_old(build_wheel(dist_dir, name, f"1.{v}.0", summary="benchmark project"))
    common.make_old(build_large_wheel(dist_dir, "warm-bench-large", "1.0.0", size_mib=large_mib))
    return names + ["warm-bench-large"]


def warm(port: int, names: Sequence[str], out: Path) -> tuple[list[StaticRoute], str, Path]:
    """Ask for every page in both formats and for the large file once.

    Returns the static routes serving byte-identical copies, the large
    file's mirror path, and the copy of its bytes.
    """
    routes: list[StaticRoute] = []
    out.mkdir(parents=True, exist_ok=True)
    large_path = ""
    for name in names:
        for fmt, headers, ctype in (
            ("json", JSON_HEADERS, common.JSON_TYPE),
            ("html", HTML_HEADERS, "text/html; charset=utf-8"),
        ):
            status, head, body = common.http_get(port, f"/simple/{name}/", headers)
            if status != 200 or head.get("content-encoding") != "gzip":
                raise RuntimeError(f"warming /simple/{name}/ ({fmt}): HTTP {status} {head} {body[:200]!r}")
            copy = out / f"{name}.{fmt}.gz"
            copy.write_bytes(body)
            routes.append(StaticRoute(f"/{fmt}/{name}", copy, ctype, True))
            if fmt == "json" and name.endswith("large"):
                large_path = urljoin(f"/simple/{name}/", json.loads(gzip.decompress(body))["files"][0]["url"])
    status, head, body = common.http_get(port, large_path, FILE_HEADERS)
    if status != 200:
        raise RuntimeError(f"warming {large_path}: HTTP {status}")
    sha256 = large_path.split("/")[2]
    if hashlib.sha256(body).hexdigest() != sha256:
        raise RuntimeError("the mirror served the large file with the wrong hash")
    large_copy = out / large_path.rsplit("/", 1)[1]
    large_copy.write_bytes(body)
    routes.append(StaticRoute(large_path, large_copy, "application/zip", False))
    return routes, large_path, large_copy


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rounds = args.rounds or (1 if args.quick else 2)
    with common.temp_workdir("indexguard-bench-warm-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        logs.mkdir()
        procs = []
        try:
            names = build_upstream(work / "dists", args.projects, args.versions, args.large_mib)
            index, upstream = common.start_index_server(work / "dists", logs)
            procs.append(index)
            port = common.free_port()
            config = common.write_mirror_config(work / "mirror.toml", upstream=upstream, storage=work / "data", port=port)
            mirror = common.start_mirror(config, port, logs, preload=args.preload)
            procs.append(mirror)
            rss = {"started": common.current_rss_mib(mirror.pid)}
            routes, large_path, _ = warm(port, names, work / "static")
            rss["warmed"] = common.current_rss_mib(mirror.pid)
            static, static_port, static_kind = common.start_static_baseline(routes, work, logs)
            procs.append(static)

            small = names[:-1]
            load = dict(connections=args.connections, seconds=seconds, work=work)
            plans = {
                "json": (lambda: common.run_load(port, [f"/simple/{n}/" for n in small], JSON_HEADERS, **load),
                         lambda: common.run_load(static_port, [f"/json/{n}" for n in small], JSON_HEADERS, **load)),
                "html": (lambda: common.run_load(port, [f"/simple/{n}/" for n in small], HTML_HEADERS, **load),
                         lambda: common.run_load(static_port, [f"/html/{n}" for n in small], HTML_HEADERS, **load)),
                "file": (lambda: common.run_file_load(port, large_path, connections=args.file_connections, seconds=seconds),
                         lambda: common.run_file_load(static_port, large_path, connections=args.file_connections, seconds=seconds)),
            }
            # Interleaved rounds, best of each side: other work on a shared
            # machine only ever slows a run down, so the best run is the
            # least disturbed one, and interleaving spreads the disturbance.
            results: dict[str, tuple[common.LoadResult, common.LoadResult]] = {}
            for kind, (on_mirror, on_baseline) in plans.items():
                if kind not in args.only:
                    continue
                runs_m, runs_b = [], []
                for _ in range(rounds):
                    runs_m.append(on_mirror())
                    runs_b.append(on_baseline())
                results[kind] = (max(runs_m, key=lambda r: r.bytes), max(runs_b, key=lambda r: r.bytes))
                rss[f"after {kind}"] = common.current_rss_mib(mirror.pid)
            rss["peak"] = common.peak_rss_mib(mirror.pid)
        finally:
            for proc in reversed(procs):
                common.stop(proc)
    return report(results, rss, static_kind, args, seconds, rounds)


def report(results: dict, rss: dict[str, float], static_kind: str, args: argparse.Namespace,
           seconds: float, rounds: int) -> dict[str, Any]:
    missing = common.LoadResult(0, 0.0, 0, 0.0, 0.0, 0, "-")
    for kind in ("json", "html", "file"):
        results.setdefault(kind, (missing, missing))
    tool = results["json"][0].tool
    print(f"\nmirror_warm: {args.projects} projects x {args.versions} wheels + one {args.large_mib:g} MiB wheel; "
          f"pages: {args.connections} connections by {tool}; file: {args.file_connections} connections by "
          f"{results['file'][0].tool}; {seconds:g} s per run, best of {rounds} interleaved run(s); "
          f"baseline = {static_kind}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    for kind in ("json", "html"):
        m, b = results[kind]
        rows.append([f"warm {kind.upper()} page (gzip)", f"{m.rps:,.0f} req/s", f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}",
                     f"{b.rps:,.0f} req/s", f"{b.p50_ms:.2f}", f"{b.p99_ms:.2f}", common.ratio(m.rps, b.rps),
                     m.errors + b.errors])
    m, b = results["file"]
    rows.append([f"warm file {args.large_mib:g} MiB", f"{m.mib_s:,.0f} MiB/s", f"{m.p50_ms:.0f}", f"{m.p99_ms:.0f}",
                 f"{b.mib_s:,.0f} MiB/s", f"{b.p50_ms:.0f}", f"{b.p99_ms:.0f}", common.ratio(m.mib_s, b.mib_s),
                 m.errors + b.errors])
    common.print_table(
        "warm serving, mirror vs static baseline (latencies in ms)",
        ["what", "mirror", "p50", "p99", "baseline", "p50", "p99", "mirror/baseline", "errors"],
        rows,
    )
    common.print_table("mirror resident memory (MiB)", list(rss), [[f"{v:.0f}" for v in rss.values()]])
    json_rps = results["json"][0].rps
    file_ratio = m.mib_s / b.mib_s if b.mib_s else 0.0
    errors = sum(x.errors for pair in results.values() for x in pair)
    peak = rss["peak"]
    floors = [
        ("warm JSON page req/s (1 worker, 16 conn)", f"{json_rps:,.0f}", f">= {FLOOR_JSON_RPS:,.0f}", json_rps >= FLOOR_JSON_RPS),
        ("file throughput vs static baseline", f"{file_ratio:.0%}", f">= {FLOOR_FILE_RATIO:.0%}", file_ratio >= FLOOR_FILE_RATIO),
        ("mirror peak RSS (VmHWM)", f"{peak:.0f} MiB", f"<= {FLOOR_RSS_MIB:.0f} MiB", peak <= FLOOR_RSS_MIB),
        ("HTTP errors under load", str(errors), "0", errors == 0),
    ]
    common.print_table("floors", ["check", "measured", "floor", "result"],
                       [[a, b_, c, "ok" if ok else "MISSED"] for a, b_, c, ok in floors])
    return {
        "json_rps": json_rps,
        "html_rps": results["html"][0].rps,
        "json_ratio": json_rps / results["json"][1].rps if results["json"][1].rps else 0.0,
        "file_mib_s": m.mib_s,
        "file_ratio": file_ratio,
        "rss_mib": peak,
        "ok": all(ok for *_, ok in floors),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mirror_warm", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 s per measurement instead of 10 s")
    p.add_argument("--seconds", type=float, default=0.0, help="seconds per measurement (overrides --quick)")
    p.add_argument("--connections", type=int, default=16, help="connections for page runs")
    p.add_argument("--file-connections", type=int, default=4, help="connections for file runs")
    p.add_argument("--rounds", type=int, default=0, help="interleaved runs per side (default 2, --quick 1)")
    p.add_argument("--projects", type=int, default=20)
    p.add_argument("--versions", type=int, default=5, help="wheels per small project")
    p.add_argument("--large-mib", type=float, default=50.0)
    p.add_argument("--only", type=lambda v: v.split(","), default=["json", "html", "file"],
                   help="comma-separated subset of json,html,file")
    p.add_argument("--preload", action="append", default=[],
                   help="module (or module:function) to import in the mirror process first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    result = run(parser().parse_args(argv))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
