"""Issue 16: a cold install whose dependencies pip finds itself, with and without screening ahead.

``real_install.txt`` pins the whole closure, so pip asks for every page in
the file's order and the mirror never learns of a page before pip asks for
it.  A user more often names a few projects and lets pip find the rest: it
reads each release's metadata, then asks for the pages of what it requires,
one at a time.  ``[server] screen_ahead`` screens and builds those pages as
soon as the metadata has been read.  This runs ``pip download`` of four
top-level projects (``REQUIREMENTS``: their dependencies unpinned) through a
fresh mirror on the public index with ``screen_ahead`` at its default and at
0, alternating and swapping the order every round, and prints every run,
the medians and their ratio, with the load average.

The public index unreachable: a message, exit status 0.

Run: python -m benchmarks.screen_ahead [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from benchmarks import common, real_install
from mirror.config import ServerSettings

REQUIREMENTS = ("transformers==5.24.0", "fastapi==0.165.0", "pandas==3.1.1", "rich==15.0.0")
DEFAULT = ServerSettings().screen_ahead


def cold_run(work: Path, screen_ahead: int) -> tuple[float, int]:
    """Seconds and files of one ``pip download`` through a fresh mirror."""
    port = common.free_port()
    config = real_install.mirror_config(work / "mirror.toml", storage=work / "data", port=port)
    config.write_text(config.read_text().replace("[storage]", f"screen_ahead = {screen_ahead}\n[storage]"))
    (work / "logs").mkdir()
    proc = common.start_mirror(config, port, work / "logs")
    try:
        real_install.wait_idle(proc.pid)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "-q", "-d", str(work / "dl"),
                        "--index-url", f"http://127.0.0.1:{port}/simple/", *REQUIREMENTS], check=True,
                       capture_output=True)
        return time.perf_counter() - began, len(list((work / "dl").iterdir()))
    finally:
        common.stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screen_ahead")
    parser.add_argument("--rounds", type=common.rounds_arg, default=3)
    args = parser.parse_args(argv)
    real_install.clean_environment()
    reason = real_install.unreachable_reason(real_install.http_session())
    if reason is not None:
        print(f"screen_ahead: the public index cannot be reached ({reason}); nothing measured")
        return 0
    modes = (DEFAULT, 0)
    seconds: dict[int, list[float]] = {mode: [] for mode in modes}
    print(f"screen_ahead: pip download {' '.join(REQUIREMENTS)} (dependencies unpinned), cold, "
          f"screen_ahead = {DEFAULT} and 0; {args.rounds} rounds")
    for round_no in range(1, args.rounds + 1):
        for mode in modes if round_no % 2 else modes[::-1]:
            work = Path(tempfile.mkdtemp(prefix="screen-ahead-"))
            try:
                took, files = cold_run(work, mode)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            seconds[mode].append(took)
            print(f"  round {round_no} screen_ahead={mode:<3} {took:6.2f} s  {files} files  "
                  f"load {real_install.load()}", flush=True)
    on, off = (statistics.median(seconds[mode]) for mode in modes)
    print(f"medians: screen_ahead={DEFAULT} {on:.2f} s, off {off:.2f} s; ratio {on / off:.2f}x "
          f"(spread on {min(seconds[DEFAULT]):.2f}-{max(seconds[DEFAULT]):.2f}, "
          f"off {min(seconds[0]):.2f}-{max(seconds[0]):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
