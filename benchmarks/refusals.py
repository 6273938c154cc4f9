"""Refused requests under a flood: the mirror with its refusal recorder against the same mirror without it.

A refused name is what a misconfigured CI farm (or an attacker) asks for in
a loop, and every refusal is now counted (``mirror.review.refusals``).  The
honest check that counting is cheap: two mirrors, identical but for one
thing - the baseline's recorder is switched off with ``--preload`` - are
flooded with the same refused page in the same run, interleaved.  The ratio
says what recording costs per refused request, whatever the machine.  The
recording mirror's table is then read back: one row for the one client, and
its count must equal the requests the load tool saw answered.

Floor: refused requests/s with recording >= 0.85 x without.

Run: python -m benchmarks.refusals [--seconds S] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from sqlalchemy import select

from benchmarks import common
from benchmarks.common import JSON_HEADERS

FLOOR_RATIO = 0.85
NAME = "reqeusts"  # one transposition from a popular project: quarantined on first request
PAGE = f"/simple/{NAME}/"


def no_recording() -> None:
    """``--preload benchmarks.refusals:no_recording``: the baseline mirror counts nothing."""
    from mirror.review.refusals import RefusalRecorder

    RefusalRecorder.record = lambda self, **kwargs: None  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="3 s rounds")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds

    from tests.support.dists import build_wheel

    with common.temp_workdir("indexguard-bench-refusals-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        logs.mkdir()
        dists = work / "dists"
        dists.mkdir()
        common.make_old(build_wheel(dists, NAME, "1.0", summary="benchmark look-alike"))
        index, upstream = common.start_index_server(dists, logs)
        mirrors = {}
        try:
            for kind, preload in (("recording", ()), ("baseline", ("benchmarks.refusals:no_recording",))):
                port = common.free_port()
                config = common.write_mirror_config(
                    work / f"{kind}.toml", upstream=upstream, storage=work / kind, port=port
                )
                mirrors[kind] = (common.start_mirror(config, port, logs, preload=preload, name=kind), port)
                status, _, _ = common.http_get(port, PAGE, JSON_HEADERS)
                if status != 403:
                    raise RuntimeError(f"{kind}: {PAGE} answered {status}, not 403")
            results: dict[str, list] = {"recording": [], "baseline": []}
            for _ in range(args.rounds):
                for kind in ("baseline", "recording"):
                    results[kind].append(common.run_load(
                        mirrors[kind][1], [PAGE], JSON_HEADERS, connections=args.connections, seconds=seconds,
                        work=work,
                    ))
            answered = 1 + sum(r.requests for r in results["recording"])
        finally:
            for proc, _ in mirrors.values():
                common.stop(proc)  # the recorder writes what waits when its server stops
            common.stop(index)
        rows = recorded_rows(work / "recording" / "indexguard.db")

    load = os.getloadavg()
    rps = {kind: sum(r.requests for r in rs) / sum(r.seconds for r in rs) for kind, rs in results.items()}
    p99 = {kind: max(r.p99_ms for r in rs) for kind, rs in results.items()}
    common.print_table(
        f"Refused page under load ({args.connections} connections, {args.rounds} x {seconds:g} s each, "
        f"{results['recording'][0].tool}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
        f"{os.cpu_count()} CPUs)",
        ["mirror", "403/s", "p99", "ratio"],
        [[kind, f"{rps[kind]:,.0f}", f"{p99[kind]:.1f} ms", common.ratio(rps[kind], rps["baseline"])]
         for kind in ("baseline", "recording")],
    )
    for kind in ("baseline", "recording"):
        print(f"{kind} rounds (403/s): " + ", ".join(f"{r.rps:,.0f}" for r in results[kind]))
    print(f"rows recorded: {rows}; requests the load tool saw answered: {answered:,}")
    # Each round ends with up to one request per connection in flight: answered (and counted), not seen by the tool.
    counted = len(rows) == 1 and 0 <= rows[0][2] - answered <= args.rounds * args.connections
    ratio = rps["recording"] / rps["baseline"] if rps["baseline"] else 0.0
    ok = ratio >= FLOOR_RATIO and counted
    print(f"recording / baseline: {ratio:.2f}x (floor {FLOOR_RATIO:.2f}x); every request counted: {counted}: "
          f"{'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


def recorded_rows(database: Path) -> list[tuple[str, str, int]]:
    from mirror.db.models import RefusedClient
    from mirror.db.session import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{database}")
    try:
        with make_session_factory(engine)() as session:
            return [(r.project, r.client, r.count) for r in session.scalars(select(RefusedClient))]
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
