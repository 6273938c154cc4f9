"""Peer mirrors run beside IndexGuard in the same benchmark run, on the same workload.

Users compare us with proxpi (a caching proxy that screens nothing).  Its
released package is installed once into a virtual environment of its own
under the benchmark cache (``~/.cache/indexguard-bench/peers``), from the
index pip uses here, and started as its documentation says (``flask run``
with ``PROXPI_INDEX_URL``).  Nothing of its code is in this repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import common

PROXPI = "proxpi==1.3.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "indexguard-bench" / "peers"


@dataclass
class Peer:
    name: str
    proc: subprocess.Popen
    index_url: str


def proxpi_python() -> Path:
    """The interpreter of proxpi's own virtual environment, made on first use."""
    venv = CACHE / PROXPI.replace("==", "-")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PROXPI], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return python


def start_proxpi(work: Path, label: str, upstream: str) -> Peer:
    """A fresh proxpi with an empty cache, proxying ``upstream`` (a Simple API root URL)."""
    python = proxpi_python()
    port = common.free_port()
    cache = work / f"{label}-cache"
    cache.mkdir()
    env = dict(os.environ, PROXPI_INDEX_URL=upstream.rstrip("/") + "/", PROXPI_CACHE_DIR=str(cache),
               FLASK_APP="proxpi.server")
    log = open(work / "logs" / f"{label}.log", "wb")
    proc = subprocess.Popen([str(python), "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    common.wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    return Peer("proxpi", proc, f"http://127.0.0.1:{port}/index/")
