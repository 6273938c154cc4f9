"""Issue 16: a cold install when the index serves PEP 658 metadata, scans in worker processes or in the server.

``real_install``'s public index sends no core metadata, so there pip
downloads each wheel right after its page and every scan waits in line.
An index that serves metadata (the public index does for most wheels) lets
pip resolve first and download afterwards: the mirror scans each chosen
file in the background meanwhile (``[content] prefetch_queue``).  Whether
those scans run beside the page work (a worker process, another core) or
take the interpreter lock from it (``scan_processes = 0``) is what this
measures.

The workload is ``real_install.txt``'s 43 real wheels, fetched once with
pip from the public index (or ``--wheels DIR``), served by the local index
(``tests/support/index_server.py --dir``) with their METADATA as PEP 658
files, upload times 800 days back.  Its pages list only these files (the
real pages list thousands, which cost page work that is not measured here).
Each round starts a fresh mirror per mode (empty store) and runs ``pip
download`` through it; modes alternate and swap order every round.  Printed:
every run (seconds, pip's CPU, the mirror's CPU with its workers, the
largest resident memory of server and workers together, the load average),
medians, and the ratio of worker processes to in-server scans.

The public index unreachable and no ``--wheels``: a message, exit status 0.

Run: python -m benchmarks.scan_processes [--rounds 3] [--wheels DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from benchmarks import common, real_install
from benchmarks.common import MIB

MODES = {"worker processes": 1, "in the server": 0}


def fetch_wheels(dest: Path) -> str | None:
    """The workload's wheels from the public index into ``dest``; why not, if they could not be had."""
    session = real_install.http_session()
    reason = real_install.unreachable_reason(session)
    if reason is not None:
        return reason
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--progress-bar", "off", "-q", "--only-binary",
         ":all:", "-d", str(dest), "--index-url", real_install.public_index(), "-r", str(real_install.REQUIREMENTS)],
        capture_output=True, text=True,
    )
    return None if done.returncode == 0 else done.stderr[-2000:]


def cold_run(mode: str, round_no: int, upstream: str, work: Path) -> real_install.PipRun:
    port = common.free_port()
    storage = work / f"data-{round_no}-{MODES[mode]}"
    config = common.write_mirror_config(
        work / f"mirror-{round_no}-{MODES[mode]}.toml", upstream=upstream, storage=storage, port=port,
        extra=f"[content]\nscan_processes = {MODES[mode]}\n",
    )
    proc = common.start_mirror(config, port, work / "logs", name=f"mirror-{round_no}-{MODES[mode]}")
    try:
        real_install.wait_idle(proc.pid)
        return real_install.pip_download(mode, round_no, f"http://127.0.0.1:{port}/simple/", work, proc.pid)
    finally:
        common.stop(proc)
        shutil.rmtree(storage, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    real_install.clean_environment()
    with common.temp_workdir("indexguard-bench-scans-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        wheels = Path(args.wheels) if args.wheels else work / "wheels"
        if not args.wheels:
            wheels.mkdir()
            reason = fetch_wheels(wheels)
            if reason is not None:
                print(f"scan_processes: skipped, the workload's wheels could not be fetched ({reason})")
                return 0
        served = work / "served"
        served.mkdir()
        for wheel in sorted(wheels.glob("*.whl")):
            common.make_old(Path(shutil.copy2(wheel, served / wheel.name)))
        count = len(list(served.iterdir()))
        size = sum(p.stat().st_size for p in served.iterdir())
        upstream_proc, upstream = common.start_index_server(served, work / "logs")
        print(f"scan_processes: {count} wheels, {size / MIB:.1f} MiB, served with PEP 658 metadata; "
              f"{args.rounds} rounds; load average {real_install.load()}", flush=True)
        runs: list[real_install.PipRun] = []
        try:
            for round_no in range(1, args.rounds + 1):
                order = list(MODES) if round_no % 2 else list(reversed(MODES))
                for mode in order:
                    run_ = cold_run(mode, round_no, upstream, work)
                    if len(run_.files) != count:
                        raise RuntimeError(f"{mode} round {round_no}: {len(run_.files)} files, expected {count}")
                    runs.append(run_)
        finally:
            common.stop(upstream_proc)
    report(runs)
    return 0


def report(runs: Sequence[real_install.PipRun]) -> None:
    common.print_table(
        "cold pip download through a fresh mirror, every run (CPU seconds of pip and of the mirror with its "
        "scan workers; MiB: server and workers together at their largest, sampled; load 1/5/15 min)",
        ["round", "scans", "seconds", "pip CPU", "mirror CPU", "peak MiB", "load before", "load after"],
        [[r.round, r.mode, f"{r.seconds:.2f}", f"{r.client_cpu:.1f}", f"{r.server_cpu or 0:.1f}",
          f"{r.tree_peak_mib:.0f}", r.load_before, r.load_after] for r in runs],
    )
    medians = {mode: statistics.median(r.seconds for r in runs if r.mode == mode) for mode in MODES}
    base = medians["in the server"]
    common.print_table(
        "medians (ratio: against scans in the server, measured in the same rounds)",
        ["scans", "median s", "min s", "max s", "ratio", "median peak MiB"],
        [[mode, f"{medians[mode]:.2f}", f"{min(r.seconds for r in runs if r.mode == mode):.2f}",
          f"{max(r.seconds for r in runs if r.mode == mode):.2f}", f"{medians[mode] / base:.2f}x",
          f"{statistics.median(r.tree_peak_mib for r in runs if r.mode == mode):.0f}"] for mode in MODES],
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scan_processes", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=common.rounds_arg, default=3, help="rounds, each running both modes (default 3)")
    p.add_argument("--wheels", default="", help="a directory holding the workload's wheels (default: fetch them)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
