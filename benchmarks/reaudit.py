"""Re-audit of N cached projects from the local upstream: seconds, and memory against project count.

Each size runs in its own process (a clean RSS), on SQLite, against an
in-process local index with N published projects that the mirror has
already screened and cached.  The smaller size is the baseline measured in
the same run: the audit's extra memory at N should be about the same as at
the baseline (projects are streamed in batches), while time grows linearly.

    python -m benchmarks.reaudit                    # 250 (baseline) and 1000
    python -m benchmarks.reaudit --sizes 250 1000 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FLOOR_SECONDS_PER_1000 = 60.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def measure(size: int, concurrency: int) -> dict:
    """Set up ``size`` cached projects, then time one full audit and sample RSS while it runs."""
    from mirror.audit.runner import AuditSettings, Auditor
    from mirror.container import Services
    from mirror.config import settings_from_mapping
    from tests.support.index_server import IndexServer
    from tests.support.publish import publish

    work = Path(tempfile.mkdtemp(prefix="reaudit-"))
    server = IndexServer().start()
    try:
        for i in range(size):
            publish(server, work, f"bench-project-{i:05d}", "1.0")
        settings = settings_from_mapping({
            "upstream": {"url": server.simple_url, "timeout": 30.0},
            "storage": {"path": str(work / "data")},
        })
        services = Services(settings)
        for i in range(size):
            name = f"bench-project-{i:05d}"
            services.pages.get(name)
            services.screening.screen(name, services.pages.upstream_page(name), {})
            services.pages.rebuild(name)
        auditor = Auditor(services, AuditSettings.from_mapping(
            {"concurrency": concurrency, "rate_per_second": 0, "vulnerability_service": "none"}))
        auditor.run(project="bench-project-00000")  # warm imports and the corpus outside the measurement
        before = rss_bytes()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        summary = auditor.run()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_bytes())
        services.close()
    finally:
        server.stop()
    return {
        "projects": summary.projects,
        "errors": summary.errors,
        "seconds": seconds,
        "rss_before_mb": before / 2**20,
        "rss_peak_mb": peak[0] / 2**20,
        "rss_growth_mb": (peak[0] - before) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.concurrency)))
        return 0
    results = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.reaudit", "--one", str(size), "--concurrency", str(args.concurrency)],
            capture_output=True, text=True, check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = results[0]
    print(f"{'projects':>8} {'errors':>6} {'seconds':>8} {'ms/proj':>8} {'x base':>7} "
          f"{'peak RSS MB':>11} {'growth MB':>9} {'x base':>7}")
    for r in results:
        per = 1000 * r["seconds"] / r["projects"]
        base_per = 1000 * base["seconds"] / base["projects"]
        growth_ratio = r["rss_growth_mb"] / base["rss_growth_mb"] if base["rss_growth_mb"] > 0 else float("nan")
        print(f"{r['projects']:>8} {r['errors']:>6} {r['seconds']:>8.1f} {per:>8.1f} {per / base_per:>7.2f} "
              f"{r['rss_peak_mb']:>11.1f} {r['rss_growth_mb']:>9.1f} {growth_ratio:>7.2f}")
    largest = results[-1]
    projected = largest["seconds"] * 1000 / largest["projects"]
    verdict = "within" if projected <= FLOOR_SECONDS_PER_1000 else "OVER"
    print(f"time for 1000 projects: {projected:.1f} s ({verdict} the {FLOOR_SECONDS_PER_1000:.0f} s floor); "
          f"RSS growth {largest['projects']} vs {base['projects']} projects: "
          f"{largest['rss_growth_mb']:.1f} MB vs {base['rss_growth_mb']:.1f} MB")
    return 0 if projected <= FLOOR_SECONDS_PER_1000 else 1


if __name__ == "__main__":
    sys.exit(main())
