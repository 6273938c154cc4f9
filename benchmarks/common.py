"""What every mirror benchmark needs: real processes, a load generator, a table.

Benchmarks measure the mirror as it runs in production: a separate server
process (``python -m mirror.cli serve``) in front of a separate upstream
process, driven over loopback by a load generator in yet another process, so
that the client's CPU time is never counted as the server's.  Every figure is
printed next to a baseline measured in the same run on the same machine,
because absolute numbers on a shared 2-core box mean little on their own.

Run as a module it offers two helpers that other benchmark code starts as
subprocesses: ``launch`` (start the mirror after importing extra modules) and
``load`` (the pure-Python load generator used when ``wrk`` is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
# What pip sends: it asks for JSON first and accepts gzip.
JSON_HEADERS = {
    "Accept": f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, text/html; q=0.01",
    "Accept-Encoding": "gzip, deflate",
}
HTML_HEADERS = {"Accept": "text/html", "Accept-Encoding": "gzip, deflate"}
FILE_HEADERS = {"Accept-Encoding": "identity"}
MIB = 1 << 20
# Old enough to pass every age and cooldown check the policy has.
OLD_UPLOAD = timedelta(days=800)


# -- processes -------------------------------------------------------------------


def rounds_arg(text: str) -> int:
    """An argparse type for ``--rounds``: a whole number, at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Block until ``url`` answers at all (any status): the server is listening."""
    deadline = time.monotonic() + timeout
    parts = url.split("/", 3)
    host, port = parts[2].rsplit(":", 1)
    path = "/" + (parts[3] if len(parts) > 3 else "")
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen | None) -> None:
    """End a process this benchmark started, politely first."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a running process, in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def current_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def make_old(path: Path, age: timedelta = OLD_UPLOAD) -> None:
    """Back-date a file: the local index takes upload times from mtimes."""
    stamp = (datetime.now(timezone.utc) - age).timestamp()
    os.utime(path, (stamp, stamp))


def start_index_server(dist_dir: Path, log_dir: Path) -> tuple[subprocess.Popen, str]:
    """The local upstream as its own process; returns it and its simple URL."""
    log = open(log_dir / "index_server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.index_server", "--port", "0", "--dir", str(dist_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("http://"):
        stop(proc)
        raise RuntimeError(f"index server did not start; see {log_dir / 'index_server.log'}")
    return proc, line.rstrip("/") + "/simple/"


def write_mirror_config(path: Path, *, upstream: str, storage: Path, port: int, extra: str = "") -> Path:
    path.write_text(
        "[server]\n"
        f'host = "127.0.0.1"\nport = {port}\nworkers = 1\naccess_log = "off"\n'
        # One benchmark client screens hundreds of names a minute on purpose.
        "screenings_per_client_per_minute = 0\n"
        "[storage]\n"
        f'path = "{storage}"\n'
        "[upstream]\n"
        f'url = "{upstream}"\ntimeout = 30.0\nindex_ttl = 86400\n' + extra,
        encoding="utf-8",
    )
    return path


def start_mirror(
    config: Path, port: int, log_dir: Path, *, preload: Sequence[str] = (), name: str = "mirror"
) -> subprocess.Popen:
    """``indexguard serve`` as a subprocess (one worker, so its pid is the server's).

    ``preload`` names modules (or ``module:function``) to import and call in
    the server process first: a benchmark's way to change one thing in the
    mirror, or to stand in for a part that has not landed yet.
    """
    serve = ["serve", "--config", str(config), "--port", str(port)]
    if preload:
        command = [sys.executable, "-m", "benchmarks.common", "launch"]
        for item in preload:
            command += ["--preload", item]
        command += ["--", *serve]
    else:
        command = [sys.executable, "-m", "mirror.cli", *serve]
    log = open(log_dir / f"{name}.log", "wb")
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    except RuntimeError as exc:
        stop(proc)
        tail = (log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} did not start: {exc}\n{tail}") from None
    return proc


def apply_preload(items: Iterable[str]) -> None:
    import importlib

    for item in items:
        module_name, _, func = item.partition(":")
        module = importlib.import_module(module_name)
        if func:
            getattr(module, func)()


def _launch(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.common launch")
    parser.add_argument("--preload", action="append", default=[])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    apply_preload(args.preload)
    from mirror.cli.main import main

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return main(rest)


# -- HTTP helpers ------------------------------------------------------------------


def http_get(port: int, path: str, headers: Mapping[str, str], *, timeout: float = 300) -> tuple[int, dict[str, str], bytes]:
    """One GET; the body exactly as sent (gzip is not undone)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers))
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


# -- static baseline ---------------------------------------------------------------


@dataclass(frozen=True)
class StaticRoute:
    path: str
    file: Path
    content_type: str
    gzip: bool


def start_static_baseline(routes: Sequence[StaticRoute], work: Path, log_dir: Path) -> tuple[subprocess.Popen, int, str]:
    """Serve the given bytes as plain static files; nginx when installed.

    nginx (one worker, sendfile) is what an operator would put in front of a
    directory of files, so it is the honest ceiling.  Without it, a minimal
    uvicorn app serves the same bytes from memory (pages) and disk (files).
    """
    port = free_port()
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if nginx:
        return _start_nginx(nginx, routes, work, log_dir, port), port, "nginx (1 worker, sendfile)"
    manifest = work / "static_routes.json"
    manifest.write_text(json.dumps([{**asdict(r), "file": str(r.file)} for r in routes]))
    log = open(log_dir / "static.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.common", "static", "--routes", str(manifest), "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc, port, "uvicorn static app (1 worker, bytes from memory)"


def _start_nginx(nginx: str, routes: Sequence[StaticRoute], work: Path, log_dir: Path, port: int) -> subprocess.Popen:
    root = work / "nginx"
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    locations = []
    for r in routes:
        enc = "add_header Content-Encoding gzip;" if r.gzip else ""
        # try_files, not alias: for a URI ending in "/" (every project page) nginx
        # would look for an index file under an alias and answer 500.
        locations.append(
            f"location = {r.path} {{ default_type \"{r.content_type}\"; {enc} "
            f"root {Path(r.file).parent}; try_files /{Path(r.file).name} =404; }}"
        )
    conf = root / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {log_dir}/nginx_error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    types {{ }}
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ return 200 "ok"; }}
        {chr(10).join(locations)}
    }}
}}
""",
        encoding="utf-8",
    )
    log = open(log_dir / "nginx.log", "wb")
    proc = subprocess.Popen([nginx, "-e", str(log_dir / "nginx_error.log"), "-c", str(conf), "-p", str(root)], stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc


def _static_app(routes: Sequence[Mapping[str, object]]):
    """A bare ASGI app: the least any Python server can do per request."""
    pages: dict[str, tuple[list[tuple[bytes, bytes]], bytes]] = {}
    files: dict[str, tuple[str, str]] = {}
    for r in routes:
        path, file, ctype = str(r["path"]), str(r["file"]), str(r["content_type"])
        if os.path.getsize(file) <= MIB:
            headers = [(b"content-type", ctype.encode())]
            if r["gzip"]:
                headers.append((b"content-encoding", b"gzip"))
            pages[path] = (headers, Path(file).read_bytes())
        else:
            files[path] = (file, ctype)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in pages:
            headers, body = pages[path]
            await send({"type": "http.response.start", "status": 200,
                        "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif path in files:
            file, ctype = files[path]
            size = os.path.getsize(file)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", ctype.encode()), (b"content-length", str(size).encode())]})
            with open(file, "rb") as handle:
                while chunk := handle.read(MIB):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

    return app


def _static(argv: Sequence[str]) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.common static")
    parser.add_argument("--routes", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    routes = json.loads(Path(args.routes).read_text())
    uvicorn.run(_static_app(routes), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


# -- load generation ---------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mib_s(self) -> float:
        return self.bytes / MIB / self.seconds if self.seconds else 0.0


_WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
request = function()
    i = i %% #paths + 1
    return wrk.format("GET", paths[i])
end
-- No response() hook: with one, wrk buffers every body for Lua, which caps
-- large-file throughput far below what the servers can do.
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("WRKJSON {\\"requests\\": %%d, \\"us\\": %%d, \\"bytes\\": %%d, \\"p50\\": %%d, \\"p99\\": %%d, \\"errors\\": %%d}\\n",
        summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def run_load(
    port: int,
    paths: Sequence[str],
    headers: Mapping[str, str],
    *,
    connections: int = 16,
    seconds: float = 10.0,
    work: Path,
) -> LoadResult:
    """Drive ``paths`` round-robin over keep-alive connections for ``seconds``.

    ``wrk`` when installed (C, two threads); otherwise the asyncio client in
    this module, in its own process.  HTTP errors (status >= 400) and socket errors count as errors.
    """
    wrk = shutil.which("wrk")
    if wrk:
        script = work / f"wrk_{os.getpid()}_{time.monotonic_ns()}.lua"
        script.write_text(_WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths)})
        command = [wrk, "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                   "--timeout", "30s", "-s", str(script)]
        for key, value in headers.items():
            command += ["-H", f"{key}: {value}"]
        command.append(f"http://127.0.0.1:{port}")
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{out}")
        data = json.loads(line.removeprefix("WRKJSON "))
        return LoadResult(data["requests"], data["us"] / 1e6, data["bytes"], data["p50"] / 1000,
                          data["p99"] / 1000, data["errors"], "wrk")
    command = [sys.executable, "-m", "benchmarks.common", "load", "--port", str(port),
               "--connections", str(connections), "--seconds", str(seconds),
               "--headers", json.dumps(dict(headers)), "--paths", json.dumps(list(paths))]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return LoadResult(**json.loads(out.strip().splitlines()[-1]))


def run_file_load(
    port: int, path: str, *, connections: int = 4, seconds: float = 10.0
) -> LoadResult:
    """Download ``path`` repeatedly over keep-alive connections for ``seconds``.

    Not wrk: wrk reads in 8 KiB pieces, which caps large-body throughput
    below what either server can send.  This client (threads, 1 MiB
    ``recv_into``, its own process) costs little per byte, so the server is
    what gets measured.  Bytes of unfinished downloads count too.
    """
    command = [sys.executable, "-m", "benchmarks.common", "fileload", "--port", str(port),
               "--connections", str(connections), "--seconds", str(seconds), "--path", path]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return LoadResult(**json.loads(out.strip().splitlines()[-1]))


def _fileload(argv: Sequence[str]) -> int:
    import threading

    parser = argparse.ArgumentParser(prog="python -m benchmarks.common fileload")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--path", required=True)
    args = parser.parse_args(argv)
    request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n".encode()
    latencies: list[float] = []
    totals = [0, 0, 0]  # finished requests, bytes, errors
    lock = threading.Lock()
    began = time.perf_counter()
    deadline = began + args.seconds

    def worker() -> None:
        buf = bytearray(MIB)
        view = memoryview(buf)
        with socket.create_connection(("127.0.0.1", args.port)) as sock:
            sock.settimeout(max(1.0, args.seconds))
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                sock.sendall(request)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    head += chunk
                head, _, rest = head.partition(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(l.split(b":", 1)[1]) for l in head.split(b"\r\n")[1:]
                              if l.lower().startswith(b"content-length:"))
                remaining = length - len(rest)
                got = len(rest)
                try:
                    while remaining > 0 and time.perf_counter() < deadline:
                        n = sock.recv_into(view[: min(MIB, remaining)])
                        if not n:
                            raise ConnectionError("server closed mid-body")
                        remaining -= n
                        got += n
                finally:
                    with lock:
                        totals[1] += got
                if remaining > 0:
                    return  # out of time mid-body
                with lock:
                    totals[0] += 1
                    totals[2] += status != 200
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    result = LoadResult(totals[0], elapsed, totals[1], _percentile(latencies, 50) * 1000,
                        _percentile(latencies, 99) * 1000, totals[2], "threaded recv_into client")
    print(json.dumps(asdict(result)))
    return 0


async def _client(port: int, paths: Sequence[str], headers: Mapping[str, str], start: int,
                  deadline: float, latencies: list[float], totals: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * MIB)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    i = start
    try:
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += 1
            began = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("the load client needs Content-Length responses")
            remaining = length
            while remaining:
                chunk = await reader.read(min(remaining, MIB))
                if not chunk:
                    raise ConnectionError("server closed mid-body")
                remaining -= len(chunk)
            latencies.append(time.perf_counter() - began)
            totals[0] += 1
            totals[1] += len(head) + length
            if status != 200:
                totals[2] += 1
    finally:
        writer.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _load(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.common load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--headers", default="{}")
    parser.add_argument("--paths", required=True)
    args = parser.parse_args(argv)
    paths, headers = json.loads(args.paths), json.loads(args.headers)
    latencies: list[float] = []
    totals = [0, 0, 0]

    async def main() -> float:
        began = time.perf_counter()
        deadline = began + args.seconds
        await asyncio.gather(*(_client(args.port, paths, headers, n, deadline, latencies, totals)
                               for n in range(args.connections)))
        return time.perf_counter() - began

    elapsed = asyncio.run(main())
    result = LoadResult(totals[0], elapsed, totals[1], _percentile(latencies, 50) * 1000,
                        _percentile(latencies, 99) * 1000, totals[2], "python asyncio client")
    print(json.dumps(asdict(result)))
    return 0


# -- output ------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000 if values else 0.0


def temp_workdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"launch": _launch, "load": _load, "fileload": _fileload, "static": _static}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m benchmarks.common {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
