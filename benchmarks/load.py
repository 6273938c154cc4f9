"""200 concurrent pip-like clients against a warm mirror with two workers.

Each client asks, over and over, for a project page in JSON with gzip (as
pip does) and then for a wheel from it.  The mirror runs as
``indexguard serve --workers 2`` with its cache warm; the load comes from
``wrk`` in its own process (the one load generator here that holds 200
connections on a 2-core box without becoming the bottleneck).  The same
request mix against a static server of the same bytes, in the same run, is
the baseline.  Pass: zero errors (socket errors, non-2xx answers, wrong
bytes).

    python -m benchmarks.load [--duration 60] [--connections 200]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urljoin

from benchmarks import common
from benchmarks.common import StaticRoute

ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = {**common.JSON_HEADERS, "Accept-Encoding": "gzip"}
FILE_HEADERS = {"Accept-Encoding": "identity"}

LUA = r"""
local targets = {}
%(targets)s
local n = 0
request = function()
  n = n + 1
  local t = targets[(n %% #targets) + 1]
  return wrk.format("GET", t[1], t[2])
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "bytes": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d, "status": %%d, "p50_ms": %%f, "p99_ms": %%f, "max_ms": %%f}\n',
    summary.requests, summary.duration / 1e6, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def lua_script(targets: Sequence[tuple[str, dict[str, str]]]) -> str:
    lines = []
    for path, headers in targets:
        pairs = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
        lines.append(f'table.insert(targets, {{"{path}", {{{pairs}}}}})')
    return LUA % {"targets": "\n".join(lines)}


def run_wrk(port: int, script: Path, connections: int, duration: int) -> dict[str, Any]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    )
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout", "status"))
    return result


Targets = list[tuple[str, dict[str, str]]]


def warm(port: int, names: Sequence[str], out: Path, mix: str) -> tuple[Targets, Targets, list[StaticRoute]]:
    """Fetch every page and file once through the mirror (checking hashes).

    Returns the request mix for the mirror, the same mix for the static
    baseline (whose page paths lose the trailing slash a static server
    would take for a directory), and the baseline's routes.
    """
    targets: Targets = []
    static_targets: Targets = []
    routes: list[StaticRoute] = []
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        page_path = f"/simple/{name}/"
        status, head, body = common.http_get(port, page_path, JSON_HEADERS)
        if status != 200 or head.get("content-encoding") != "gzip":
            raise RuntimeError(f"warming {page_path}: HTTP {status} {body[:200]!r}")
        entry = json.loads(gzip.decompress(body))["files"][0]
        file_path = urljoin(page_path, entry["url"])
        status, _, data = common.http_get(port, file_path, FILE_HEADERS)
        if status != 200 or hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
            raise RuntimeError(f"warming {file_path}: HTTP {status} or wrong hash")
        page_copy, file_copy = out / f"{name}.json.gz", out / entry["filename"]
        page_copy.write_bytes(body)
        file_copy.write_bytes(data)
        static_page = f"/json/{name}"
        routes += [StaticRoute(static_page, page_copy, common.JSON_TYPE, True),
                   StaticRoute(file_path, file_copy, "application/zip", False)]
        if mix in ("both", "pages"):
            targets.append((page_path, JSON_HEADERS))
            static_targets.append((static_page, JSON_HEADERS))
        if mix in ("both", "files"):
            targets.append((file_path, FILE_HEADERS))
            static_targets.append((file_path, FILE_HEADERS))
    return targets, static_targets, routes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds per measurement (default 60)")
    parser.add_argument("--connections", type=int, default=200, help="concurrent clients (default 200)")
    parser.add_argument("--projects", type=int, default=20, help="distinct projects in the mix")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mix", choices=("both", "pages", "files"), default="both",
                        help="what each client asks for (default: a page, then a wheel)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    from tests.support.dists import build_wheel

    with tempfile.TemporaryDirectory(prefix="indexguard-load-") as tmp:
        work = Path(tmp)
        dists, logs = work / "dists", work / "logs"
        dists.mkdir()
        logs.mkdir()
        names = [f"load-bench-{i:02d}" for i in range(args.projects)]
        for name in names:
            common.make_old(build_wheel(dists, name, "1.0.0", summary="load benchmark project"))
        index, upstream = common.start_index_server(dists, logs)
        mirror = static = None
        try:
            port = common.free_port()
            config = common.write_mirror_config(work / "mirror.toml", upstream=upstream, storage=work / "data", port=port)
            log = open(logs / "mirror.log", "wb")
            mirror = subprocess.Popen(
                [sys.executable, "-m", "mirror.cli", "serve", "--config", str(config), "--port", str(port),
                 "--workers", str(args.workers)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )
            common.wait_http(f"http://127.0.0.1:{port}/healthz", proc=mirror)
            targets, static_targets, routes = warm(port, names, work / "copies", args.mix)
            script, static_script = work / "mix.lua", work / "static_mix.lua"
            script.write_text(lua_script(targets))
            static_script.write_text(lua_script(static_targets))
            static, static_port, static_kind = common.start_static_baseline(routes, work, logs)
            baseline = run_wrk(static_port, static_script, args.connections, args.duration)
            measured = run_wrk(port, script, args.connections, args.duration)
        finally:
            common.stop(mirror)
            common.stop(static)
            common.stop(index)
    common.print_table(
        f"{args.connections} pip-like clients (page JSON+gzip, then a wheel), warm cache, {args.duration} s each",
        ["server", "requests/s", "p50 ms", "p99 ms", "max ms", "errors"],
        [
            [f"mirror ({args.workers} workers)", f"{measured['rps']:.0f}", f"{measured['p50_ms']:.1f}",
             f"{measured['p99_ms']:.1f}", f"{measured['max_ms']:.0f}", measured["errors"]],
            [f"baseline: {static_kind}", f"{baseline['rps']:.0f}", f"{baseline['p50_ms']:.1f}",
             f"{baseline['p99_ms']:.1f}", f"{baseline['max_ms']:.0f}", baseline["errors"]],
        ],
    )
    print(f"mirror / baseline requests/s: {common.ratio(measured['rps'], baseline['rps'])}")
    print(json.dumps({"mirror": measured, "baseline": baseline}))
    ok = measured["errors"] == 0
    print("PASS: zero errors" if ok else f"FAIL: {measured['errors']} errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
