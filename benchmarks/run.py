"""Run every benchmark with one command and sum up the floors.

    python -m benchmarks.run            # full run (about 5 minutes on 2 cores)
    python -m benchmarks.run --quick    # short runs, same checks (about 3 minutes)
    python -m benchmarks.run --only mirror_warm,screening

The mirror benchmarks run in this process; the others (detector accuracy and
speed, re-audit, load) run as subprocesses when their modules exist, so a
missing or crashing one is reported and the rest still run.  Exit status is
0 only if every benchmark that ran met its floors.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from typing import Sequence

from benchmarks import common

IN_PROCESS = ("mirror_warm", "screening")
OTHERS = ("detectors_eval", "detectors_speed", "reaudit", "load", "sbom", "content", "real_install")


def _run_in_process(name: str, args: argparse.Namespace) -> tuple[str, str]:
    module = importlib.import_module(f"benchmarks.{name}")
    argv = (["--quick"] if args.quick else []) + [f"--preload={p}" for p in args.preload]
    try:
        result = module.run(module.parser().parse_args(argv))
    except Exception as exc:  # report and go on with the next benchmark
        return "error", f"{type(exc).__name__}: {exc}"
    return ("ok" if result["ok"] else "floor missed"), ""


def _supports_quick(name: str) -> bool:
    """Whether a benchmark takes --quick (asked via --help)."""
    probe = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=common.ROOT,
                           capture_output=True, text=True, timeout=120)
    return "--quick" in probe.stdout


def _run_subprocess(name: str, args: argparse.Namespace) -> tuple[str, str]:
    if importlib.util.find_spec(f"benchmarks.{name}") is None:
        return "skipped", f"benchmarks/{name}.py does not exist yet"
    argv = [sys.executable, "-m", f"benchmarks.{name}"]
    if args.quick and _supports_quick(name):
        argv.append("--quick")
    print(f"\n$ {' '.join(argv[1:])}", flush=True)
    env = dict(os.environ)
    done = subprocess.run(argv, cwd=common.ROOT, env=env)
    return ("ok" if done.returncode == 0 else f"exit {done.returncode}"), ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds each)")
    parser.add_argument("--only", type=lambda v: v.split(","), default=None,
                        help=f"comma-separated subset of {','.join(IN_PROCESS + OTHERS)}")
    parser.add_argument("--preload", action="append", default=[],
                        help="module (or module:function) to import first in mirror processes "
                             "(a stand-in for a part of the tree that has not landed)")
    args = parser.parse_args(argv)
    chosen = args.only or list(IN_PROCESS + OTHERS)
    unknown = set(chosen) - set(IN_PROCESS + OTHERS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    print(f"indexguard benchmarks on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
          f"{' (quick)' if args.quick else ''}", flush=True)
    summary = []
    for name in chosen:
        began = time.monotonic()
        print(f"\n=== {name} ===", flush=True)
        if name in IN_PROCESS:
            status, note = _run_in_process(name, args)
        else:
            status, note = _run_subprocess(name, args)
        if note:
            print(f"{name}: {status}: {note}", flush=True)
        summary.append([name, status, f"{time.monotonic() - began:.0f} s", note[:80]])
    common.print_table("summary", ["benchmark", "result", "time", "note"], summary)
    return 0 if all(row[1] in ("ok", "skipped") for row in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
