"""Issue 16: a real ML stack from the real public index, direct and through the mirror.

The other benchmarks use a local upstream and small synthetic projects.  A
user measures this instead: ``pip download`` of a pinned closure of 15
top-level projects (``real_install.txt``: 43 wheels, about 69 MiB), straight
from the public index and through IndexGuard, on the same machine, in the
same minutes.  Three modes take turns in every round:

* direct: pip against the public index (its URL taken from pip's own
  defaults, so no host name is written here);
* cold: pip through a freshly started mirror with an empty data directory
  (every project screened, every page and file fetched for the first time);
* warm: pip through that same mirror again (everything cached).

pip runs with ``--no-cache-dir`` and its configuration disabled
(``PIP_CONFIG_FILE=/dev/null``, no ``PIP_*`` variables except trust
settings).  The mirror runs as ``indexguard serve``, one worker, with the
embedded defaults plus a config that points storage at a temp directory
and sets ``public_url`` to the address pip uses (as a deployment does).
Medians, spread and the cold/direct and warm/direct ratios are the headline.
Each run also reports pip's CPU seconds and the mirror's during it (its
process and its workers, the page process and the content-scan workers): a
mirror busy for most of a cold run's seconds is what the client waits on
(pip asks one thing at a time).  Memory is the server's own, its live
workers' (they exit when idle), and both together at their peak, sampled
during the runs.
With ``--peers``, every round also runs a fresh proxpi 1.3.1 (a caching
proxy that screens nothing; ``benchmarks/peers.py``) cold and warm on the
same workload, so the peer's ratios come from the same minutes.

After the rounds: the mirror's peak RSS (``VmHWM``) and where its resident
memory lies (``/proc/PID/smaps``); page throughput with ``wrk`` on the
workload's largest pages (gzip, 16 connections); a per-project look from the
outside (each cold page through a fresh mirror against the same page and the
JSON API straight from the index; a few files cold, warm and direct); and,
in separate processes that import the mirror (``real_install_inprocess``),
the phases of every cold project and the top ``tracemalloc`` allocations
after serving the workload.  The machine's load average is printed with
every timing: the box is shared, and a busy neighbour only ever slows a run.

The public index unreachable: a message and exit status 0 (nothing measured).

Run: python -m benchmarks.real_install [--rounds 3] [--seconds 10] [--peers] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urljoin

import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pip import __version__ as pip_version
from pip._internal.models.index import PyPI

from benchmarks import common, peers
from benchmarks.common import JSON_HEADERS, JSON_TYPE, MIB, ROOT
from mirror.container import SCHEMA_READY_ENV
from mirror.upstream.client import derive_json_api_url

REQUIREMENTS = Path(__file__).with_name("real_install.txt")
# pip settings that say whom to trust, not where to look: kept, so that a
# site behind a TLS-inspecting proxy can still run the benchmark.
KEPT_PIP_ENV = frozenset({"PIP_CERT", "PIP_CLIENT_CERT", "PIP_PROXY"})
MODES = ("direct", "cold", "warm")
PEER_MODES = ("proxpi cold", "proxpi warm")  # with --peers: proxpi 1.3.1, fresh each round
# Issue 16's goals, printed next to the measurements.
GOAL_COLD, GOAL_WARM, GOAL_RSS_MIB, GOAL_PAGE_RPS = 1.3, 0.9, 150.0, 5000.0
NUMPY = "numpy"  # the issue measures page throughput on a numpy-sized page
IDLE_TIMEOUT = 60.0
IN_PROCESS_TIMEOUT = 300.0


# -- set-up -----------------------------------------------------------------------


def clean_environment() -> None:
    """pip without configuration, and a mirror that takes nothing from the environment.

    Changed in this process so that every child (pip, the mirror) inherits it.
    """
    for key in list(os.environ):
        if (key.startswith("PIP_") and key not in KEPT_PIP_ENV) or key.startswith("INDEXGUARD_"):
            del os.environ[key]
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    os.environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    os.environ["PIP_NO_INPUT"] = "1"


def public_index() -> str:
    return PyPI.simple_url.rstrip("/") + "/"


def http_session() -> requests.Session:
    session = requests.Session()
    session.verify = os.environ.get("PIP_CERT") or True
    return session


def unreachable_reason(session: requests.Session) -> str | None:
    """Why the public index (its pages and its file host) cannot be used now, or None."""
    try:
        response = session.get(public_index() + "pip/", headers=JSON_HEADERS, timeout=15)
        response.raise_for_status()
        url = response.json()["files"][-1]["url"]
        session.head(url, timeout=15, allow_redirects=True).raise_for_status()
    except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def ensure_wrk() -> str:
    """``wrk`` on PATH, installed with apt-get when missing and possible; the tool that will load pages."""
    if shutil.which("wrk"):
        return "wrk"
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print("installing wrk (apt-get update; apt-get install -y wrk) ...", flush=True)
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, check=False)
    if shutil.which("wrk"):
        return "wrk"
    return "python asyncio client (wrk could not be installed; page req/s understate the server)"


def read_pins(path: Path = REQUIREMENTS) -> list[tuple[str, str]]:
    """(canonical name, version) for every ``name==version`` line."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"{path.name}: {line!r} is not pinned with ==")
        pins.append((canonicalize_name(req.name), specs[0].version))
    return pins


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- the mirror -------------------------------------------------------------------


@dataclass
class Mirror:
    proc: subprocess.Popen
    port: int
    storage: Path
    config: Path
    idle_rss_mib: float = 0.0

    @property
    def simple_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"


def mirror_config(path: Path, *, storage: Path, port: int) -> Path:
    """The embedded defaults plus storage, one worker on loopback and the address clients use: nothing tuned.

    ``public_url`` is what a deployment sets to the URL its clients reach
    (behind a proxy it must); with it, pages carry absolute file links.
    """
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nworkers = 1\npublic_url = "http://127.0.0.1:{port}/"\n'
        f'[storage]\npath = "{storage}"\n',
        encoding="utf-8",
    )
    return path


def start_fresh_mirror(work: Path, label: str) -> Mirror:
    port = common.free_port()
    storage = work / f"data-{label}"
    config = mirror_config(work / f"{label}.toml", storage=storage, port=port)
    proc = common.start_mirror(config, port, work / "logs", name=label)
    mirror = Mirror(proc, port, storage, config)
    # The corpus loads on a thread at start-up; a real mirror has long
    # finished when its first user arrives, so wait for the process to go idle.
    wait_idle(proc.pid)
    mirror.idle_rss_mib = common.current_rss_mib(proc.pid)
    return mirror


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the mirror's page process and content-scan workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``, of its children that ended (reaped), and of its live ones."""
    fields = _stat(pid)
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue  # ended meanwhile: counted with the parent from now on
    return total


def children_rss_mib(pid: int) -> float:
    total = 0.0
    for child in children(pid):
        try:
            total += common.current_rss_mib(child)
        except (OSError, RuntimeError):
            continue
    return total


class PeakSampler:
    """The largest resident memory of the mirror and its workers together, sampled every 0.1 s.

    A worker that exits takes its ``VmHWM`` with it, so the sum of the
    tree's peaks can only be watched, not read afterwards.
    """

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mib = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak_mib = max(self.peak_mib, common.current_rss_mib(self.pid) + children_rss_mib(self.pid))
            except (OSError, RuntimeError):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_idle(pid: int, *, quiet: float = 1.0, timeout: float = IDLE_TIMEOUT) -> None:
    """Until ``pid`` used under 2% of a core for ``quiet`` seconds (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    last, calm_since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last > 0.25 * 0.02:
            calm_since = time.monotonic()
        last = now
        if time.monotonic() - calm_since >= quiet:
            return


def rss_by_mapping(pid: int, top: int = 8) -> list[tuple[str, float]]:
    """Resident MiB per mapping name (anonymous memory, heap, each library), largest first."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping's header line: range perms offset dev inode [path]
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
                name = name.split("/")[-1] if name.startswith("/") else name
            elif head == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    ordered = sorted(sizes.items(), key=lambda kv: -kv[1])
    rest = sum(v for _, v in ordered[top:])
    rows = [(k, v / 1024) for k, v in ordered[:top]]
    if rest:
        rows.append((f"{len(ordered) - top} other mappings", rest / 1024))
    return rows


# -- pip runs ---------------------------------------------------------------------


@dataclass
class PipRun:
    mode: str
    round: int
    seconds: float
    load_before: str
    load_after: str
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    # CPU seconds during the run: pip's own, and the mirror's (None: direct, or a peer's).
    # A mirror busy for most of the run's seconds is what holds the client up.
    client_cpu: float = 0.0
    server_cpu: float | None = None  # the mirror's process and its workers
    tree_peak_mib: float = 0.0  # the mirror and its workers together, sampled


def pip_download(mode: str, round_no: int, index_url: str, work: Path, server_pid: int | None = None) -> PipRun:
    dest = work / f"pip-{mode}-{round_no}"
    command = [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--progress-bar", "off", "-q",
               "-d", str(dest), "--index-url", index_url, "-r", str(REQUIREMENTS)]
    before = load()
    server_before = tree_cpu_seconds(server_pid) if server_pid is not None else 0.0
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = PeakSampler(server_pid) if server_pid is not None else contextlib.nullcontext()
    began = time.perf_counter()
    with sampler:
        done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ended.ru_utime + ended.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    server_cpu = tree_cpu_seconds(server_pid) - server_before if server_pid is not None else None
    if done.returncode != 0:
        raise RuntimeError(f"pip download ({mode}, round {round_no}) failed:\n{done.stderr[-3000:]}")
    files = sorted(p.name for p in dest.iterdir())
    size = sum(p.stat().st_size for p in dest.iterdir())
    shutil.rmtree(dest)
    run = PipRun(mode, round_no, seconds, before, load(), files, size, client_cpu, server_cpu,
                 sampler.peak_mib if isinstance(sampler, PeakSampler) else 0.0)
    busy = f"  mirror CPU {server_cpu:.1f} s" if server_cpu is not None else ""
    print(f"  round {round_no} {mode:11} {seconds:7.2f} s  {len(files)} files {size / MIB:.1f} MiB  "
          f"pip CPU {client_cpu:.1f} s{busy}  load {run.load_before} -> {run.load_after}", flush=True)
    return run


def round_order(round_no: int) -> tuple[str, ...]:
    """Direct first in odd rounds, last in even ones: network drift hits both sides alike."""
    return ("direct", "cold", "warm") if round_no % 2 else ("cold", "warm", "direct")


@dataclass
class RoundMemory:
    round: int
    idle_mib: float
    after_cold_mib: float
    after_warm_mib: float
    peak_mib: float  # the server's VmHWM
    workers_after_cold_mib: float = 0.0  # its live workers (page, scan), when the cold run ended
    workers_after_warm_mib: float = 0.0
    peak_tree_mib: float = 0.0  # server and workers together, sampled during the runs


def run_rounds(work: Path, rounds: int, expected: int,
               with_peers: bool = False) -> tuple[list[PipRun], list[RoundMemory], Mirror]:
    """Every round: direct, cold and warm in turn (then a fresh peer cold and warm, if asked);
    the last round's mirror is left running."""
    runs: list[PipRun] = []
    memory: list[RoundMemory] = []
    mirror: Mirror | None = None
    for round_no in range(1, rounds + 1):
        if mirror is not None:
            common.stop(mirror.proc)
            shutil.rmtree(mirror.storage, ignore_errors=True)
        mirror = start_fresh_mirror(work, f"mirror-r{round_no}")
        after_cold = workers_after_cold = peak_tree = 0.0
        for mode in round_order(round_no):
            url = public_index() if mode == "direct" else mirror.simple_url
            run = pip_download(mode, round_no, url, work, None if mode == "direct" else mirror.proc.pid)
            if len(run.files) != expected:
                raise RuntimeError(f"{mode} round {round_no}: {len(run.files)} files, expected {expected}")
            if runs and run.files != runs[0].files:
                raise RuntimeError(f"{mode} round {round_no} downloaded other files than round 1 direct")
            runs.append(run)
            peak_tree = max(peak_tree, run.tree_peak_mib)
            if mode == "cold":
                after_cold = common.current_rss_mib(mirror.proc.pid)
                workers_after_cold = children_rss_mib(mirror.proc.pid)
            if mode == "warm":
                memory.append(RoundMemory(round_no, mirror.idle_rss_mib, after_cold,
                                          common.current_rss_mib(mirror.proc.pid),
                                          common.peak_rss_mib(mirror.proc.pid), workers_after_cold,
                                          children_rss_mib(mirror.proc.pid), peak_tree))
        if with_peers:
            peer = peers.start_proxpi(work, f"proxpi-r{round_no}", public_index())
            try:
                for mode in PEER_MODES:
                    run = pip_download(mode, round_no, peer.index_url, work)
                    if run.files != runs[0].files:
                        raise RuntimeError(f"{mode} round {round_no} downloaded other files than round 1 direct")
                    runs.append(run)
            finally:
                common.stop(peer.proc)
    assert mirror is not None
    return runs, memory, mirror


# -- pages under load --------------------------------------------------------------


def page_sizes(port: int, names: Sequence[str]) -> dict[str, bytes]:
    """The gzipped JSON page the mirror sends for each name (as pip asks for it)."""
    bodies = {}
    for name in names:
        status, headers, body = common.http_get(port, f"/simple/{name}/", JSON_HEADERS)
        if status != 200 or headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"/simple/{name}/: {status}, encoding {headers.get('content-encoding')!r}")
        bodies[name] = body
    return bodies


def page_load(mirror: Mirror, bodies: dict[str, bytes], work: Path, seconds: float,
              connections: int) -> list[dict[str, Any]]:
    """wrk on numpy's page (the issue's "numpy-sized" page), the largest page alone, the five largest in
    turn, and numpy's and the largest page from a static server serving the same bytes (the baseline)."""
    largest = sorted(bodies, key=lambda n: -len(bodies[n]))
    numpy_page = [NUMPY] if NUMPY in bodies else largest[:1]
    sets = [("numpy page", numpy_page), ("largest page", largest[:1]), ("5 largest pages", largest[:5])]
    results = []
    for label, names in sets:
        paths = [f"/simple/{n}/" for n in names]
        result = common.run_load(mirror.port, paths, JSON_HEADERS, connections=connections,
                                 seconds=seconds, work=work)
        results.append({"server": "mirror", "set": label, "pages": names, "load": load(), **_load_row(result)})
    for label, name in (("numpy page", numpy_page[0]), ("largest page", largest[0])):
        static_file = work / f"static-{name}.json.gz"
        static_file.write_bytes(bodies[name])
        route = common.StaticRoute(f"/simple/{name}/", static_file, JSON_TYPE, gzip=True)
        proc, port, kind = common.start_static_baseline([route], work, work / "logs")
        try:
            result = common.run_load(port, [route.path], JSON_HEADERS, connections=connections,
                                     seconds=seconds, work=work)
            results.append({"server": kind, "set": label, "pages": [name], "load": load(), **_load_row(result)})
        finally:
            common.stop(proc)
    return results


def _load_row(result: common.LoadResult) -> dict[str, Any]:
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "mib_s": result.mib_s,
            "errors": result.errors, "tool": result.tool, "requests": result.requests}


# -- the outside look at cold projects --------------------------------------------


def timed_get(session: requests.Session, url: str, headers: dict[str, str]) -> tuple[float, float, bytes]:
    """(seconds to the response head, seconds to the last byte, body as sent)."""
    began = time.perf_counter()
    with session.get(url, headers=headers, stream=True, timeout=120) as response:
        head = time.perf_counter() - began
        response.raise_for_status()
        body = b"".join(response.raw.stream(MIB, decode_content=False))
    return head, time.perf_counter() - began, body


def mirror_get(port: int, path: str, headers: dict[str, str]) -> tuple[float, float, bytes]:
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        head = time.perf_counter() - began
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    finally:
        conn.close()
    return head, time.perf_counter() - began, body


def files_of(body: bytes, encoded: bool, page_url: str) -> dict[str, dict[str, Any]]:
    """filename -> its entry on a JSON page, with the URL resolved against the page's."""
    data = json.loads(gzip.decompress(body) if encoded else body)
    return {f["filename"]: {**f, "url": urljoin(page_url, f["url"])} for f in data.get("files", [])}


def outside_look(work: Path, pins: Sequence[tuple[str, str]], filenames: Sequence[str]) -> dict[str, Any]:
    """Each project cold through a fresh mirror, next to the same page and JSON straight from the index."""
    session = http_session()
    json_api = derive_json_api_url(public_index())
    mirror = start_fresh_mirror(work, "mirror-probe")
    pages = []
    direct_files: dict[str, dict[str, Any]] = {}
    mirror_files: dict[str, dict[str, Any]] = {}
    try:
        for name, _ in pins:
            _, d_page, d_body = timed_get(session, f"{public_index()}{name}/", JSON_HEADERS)
            _, d_json, _ = timed_get(session, f"{json_api}{name}/json", {"Accept": "application/json",
                                                                        "Accept-Encoding": "gzip"})
            before = load()
            _, cold, body = mirror_get(mirror.port, f"/simple/{name}/", JSON_HEADERS)
            _, warm, _ = mirror_get(mirror.port, f"/simple/{name}/", JSON_HEADERS)
            direct_files.update(files_of(d_body, d_body[:2] == b"\x1f\x8b", f"{public_index()}{name}/"))
            listed = files_of(body, True, f"/simple/{name}/")
            mirror_files.update(listed)
            pages.append({"name": name, "files": len(listed), "page_kib": len(body) / 1024,
                          "direct_page": d_page, "direct_json": d_json, "cold": cold, "warm": warm,
                          "load": before})
        files = []
        for filename in probe_files(filenames, direct_files):
            size = direct_files[filename]["size"]
            d_head, d_total, _ = timed_get(session, direct_files[filename]["url"], {"Accept-Encoding": "identity"})
            path = mirror_files[filename]["url"]
            c_head, c_total, _ = mirror_get(mirror.port, path, {"Accept-Encoding": "identity"})
            _, w_total, _ = mirror_get(mirror.port, path, {"Accept-Encoding": "identity"})
            files.append({"filename": filename, "mib": size / MIB, "direct_head": d_head, "direct": d_total,
                          "cold_head": c_head, "cold": c_total, "warm": w_total, "load": load()})
    finally:
        common.stop(mirror.proc)
    return {"pages": pages, "files": files}


def probe_files(filenames: Sequence[str], listed: dict[str, dict[str, Any]]) -> list[str]:
    """The largest file, the one nearest 3 MiB and the smallest: a spread of sizes, little traffic."""
    by_size = sorted(filenames, key=lambda f: listed[f]["size"])
    middle = min(by_size, key=lambda f: abs(listed[f]["size"] - 3 * MIB))
    return list(dict.fromkeys([by_size[-1], middle, by_size[0]]))


# -- in-process looks (their own processes) -----------------------------------------


def in_process(mode: str, work: Path, names: Sequence[str], filenames: Sequence[str] = (),
               seed_from: Path | None = None, frames: int = 1) -> dict[str, Any] | None:
    """Run ``benchmarks.real_install_inprocess MODE`` on a fresh data dir; its JSON result."""
    storage = work / f"data-{mode}"
    if seed_from is not None:  # the blobs a mirror already verified, hard-linked: no second download
        shutil.copytree(seed_from / "files" / "blobs", storage / "files" / "blobs", copy_function=os.link)
    config = mirror_config(work / f"{mode}.toml", storage=storage, port=common.free_port())
    # As `serve` does: migrate (and build the corpus file) in a process of its own, so the looks
    # see the server's imports, not alembic's (its templates pull in mako and pygments).
    subprocess.run([sys.executable, "-m", "mirror.cli", "prepare", "--config", str(config)],
                   cwd=ROOT, capture_output=True, check=True)
    command = [sys.executable]
    if mode == "memory":
        command += ["-X", f"tracemalloc={frames}"]
    command += ["-m", "benchmarks.real_install_inprocess", mode, "--config", str(config),
                "--names", json.dumps(list(names)), "--filenames", json.dumps(list(filenames))]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=IN_PROCESS_TIMEOUT,
                              env={**os.environ, SCHEMA_READY_ENV: "1"})
    except subprocess.TimeoutExpired:
        print(f"in-process {mode}: no result within {IN_PROCESS_TIMEOUT:.0f} s, left out")
        return None
    if done.returncode != 0:
        print(f"in-process {mode} failed, left out:\n{done.stderr[-3000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- report -----------------------------------------------------------------------


def spread(values: Sequence[float]) -> float:
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else 0.0


def summarise(runs: Sequence[PipRun]) -> dict[str, dict[str, float]]:
    by_mode = {m: [r.seconds for r in runs if r.mode == m] for m in MODES + PEER_MODES}
    by_mode = {m: values for m, values in by_mode.items() if values}
    direct = statistics.median(by_mode["direct"])
    summary = {}
    for mode, values in by_mode.items():
        paired = [r.seconds / d.seconds for r in runs if r.mode == mode
                  for d in runs if d.mode == "direct" and d.round == r.round]
        summary[mode] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                         "spread": spread(values), "ratio": statistics.median(values) / direct,
                         "paired_ratio": statistics.median(paired)}
    return summary


def report_rounds(runs: Sequence[PipRun], memory: Sequence[RoundMemory]) -> dict[str, dict[str, float]]:
    summary = summarise(runs)
    common.print_table(
        "pip download, every run (seconds; CPU seconds of pip and of the mirror during it; load average 1/5/15 min before -> after)",
        ["round", "mode", "seconds", "pip CPU", "mirror CPU", "load before", "load after"],
        [[r.round, r.mode, f"{r.seconds:.2f}", f"{r.client_cpu:.1f}",
          "-" if r.server_cpu is None else f"{r.server_cpu:.1f}", r.load_before, r.load_after] for r in runs],
    )
    common.print_table(
        "medians (ratio: median / median direct; paired: median of each round's own ratio)",
        ["mode", "median s", "min s", "max s", "spread", "ratio", "paired ratio"],
        [[m, f"{s['median']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}", f"{s['spread']:.0%}",
          f"{s['ratio']:.2f}x", f"{s['paired_ratio']:.2f}x"] for m, s in summary.items()],
    )
    common.print_table(
        "mirror memory per round (MiB): the server idle after start (corpus loaded), after cold, after warm, "
        "its peak VmHWM; its live workers (page process, scan workers) after cold and warm (they exit when idle); "
        "server and workers together at their peak (sampled every 0.1 s)",
        ["round", "idle", "after cold", "after warm", "peak", "workers cold", "workers warm", "peak with workers"],
        [[m.round, f"{m.idle_mib:.0f}", f"{m.after_cold_mib:.0f}", f"{m.after_warm_mib:.0f}", f"{m.peak_mib:.0f}",
          f"{m.workers_after_cold_mib:.0f}", f"{m.workers_after_warm_mib:.0f}", f"{m.peak_tree_mib:.0f}"]
         for m in memory],
    )
    return summary


def report_pages(results: Sequence[dict[str, Any]], bodies: dict[str, bytes]) -> None:
    static = {r["set"]: r["rps"] for r in results if r["server"] != "mirror"}

    def versus(r: dict[str, Any]) -> str:
        base = static.get(r["set"])
        return f"{r['rps'] / base:.2f}x" if r["server"] == "mirror" and base else "-"

    common.print_table(
        "warm JSON pages under load (gzip, keep-alive; vs static: the mirror's req/s over a static server's on "
        "the same bytes, this run; load average 1/5/15 at the end of each run)",
        ["server", "pages", "KiB each", "req/s", "vs static", "p50 ms", "p99 ms", "MiB/s", "errors", "tool", "load"],
        [[r["server"], f"{r['set']}: {','.join(r['pages'])}",
          "/".join(f"{len(bodies[n]) / 1024:.0f}" for n in r["pages"]), f"{r['rps']:,.0f}", versus(r),
          f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['mib_s']:.0f}", r["errors"], r["tool"], r["load"]]
         for r in results],
    )


def report_outside(look: dict[str, Any]) -> None:
    pages = look["pages"]
    rows = sorted(pages, key=lambda p: -(p["cold"] - p["direct_page"]))
    table = [[p["name"], p["files"], f"{p['page_kib']:.0f}", f"{p['direct_page'] * 1000:.0f}",
              f"{p['direct_json'] * 1000:.0f}", f"{p['cold'] * 1000:.0f}", f"{p['warm'] * 1000:.1f}",
              f"{(p['cold'] - p['direct_page']) * 1000:.0f}", p["load"]] for p in rows[:12]]
    totals = {k: sum(p[k] for p in pages) for k in ("direct_page", "direct_json", "cold", "warm")}
    table.append([f"all {len(pages)} (sum)", sum(p["files"] for p in pages), f"{sum(p['page_kib'] for p in pages):.0f}",
                  f"{totals['direct_page'] * 1000:.0f}", f"{totals['direct_json'] * 1000:.0f}",
                  f"{totals['cold'] * 1000:.0f}", f"{totals['warm'] * 1000:.0f}",
                  f"{(totals['cold'] - totals['direct_page']) * 1000:.0f}", load()])
    common.print_table(
        "cold pages from the outside (ms): direct page and JSON API from the index; the same page through a "
        "fresh mirror, cold then warm; the 12 costliest and the sum",
        ["project", "files", "KiB gz", "direct page", "direct JSON API", "mirror cold", "mirror warm",
         "cold - direct", "load"],
        table,
    )
    common.print_table(
        "files from the outside (head: seconds to the response head; total: to the last byte)",
        ["file", "MiB", "direct head", "direct total", "cold head", "cold total", "warm total", "load"],
        [[f["filename"][:48], f"{f['mib']:.2f}", f"{f['direct_head']:.3f}", f"{f['direct']:.3f}",
          f"{f['cold_head']:.3f}", f"{f['cold']:.3f}", f"{f['warm']:.3f}", f["load"]] for f in look["files"]],
    )


def report_phases(result: dict[str, Any]) -> None:
    samples = result["samples"]
    names = {k for s in samples for k in s["phases"]}

    def col(key: str, i: int) -> list[float]:
        return [s["phases"].get(key, [0.0] * 4)[i] for s in samples]

    rows = []
    for key in sorted(names, key=lambda k: -sum(col(k, 1))):
        worst = max(samples, key=lambda s: s["phases"].get(key, [0.0] * 4)[1])
        rows.append([key, f"{sum(col(key, 1)) * 1000:.0f}", f"{sum(col(key, 3)) * 1000:.0f}",
                     f"{sum(col(key, 0)) * 1000:.0f}", f"{statistics.median(col(key, 1)) * 1000:.1f}",
                     f"{worst['phases'].get(key, [0.0] * 4)[1] * 1000:.0f} {worst['name']}"])
    total = sum(s["total"] for s in samples)
    own = sum(sum(col(k, 1)) for k in names)
    rows.append(["other (code no phase covers: routes, ORM reads, locks, thread hops, client)",
                 f"{(total - own) * 1000:.0f}", "", "", "", ""])
    rows.append(["total of cold page requests (CPU: whole process)", f"{total * 1000:.0f}",
                 f"{sum(s['cpu'] for s in samples) * 1000:.0f}", "",
                 f"{statistics.median(s['total'] for s in samples) * 1000:.1f}",
                 f"{max(s['total'] for s in samples) * 1000:.0f} {max(samples, key=lambda s: s['total'])['name']}"])
    print(f"\nin-process phases of {len(samples)} cold projects (separate process, real index, SQLite; "
          f"corpus ready {result['corpus_s']:.1f} s after start; RSS MiB {result['rss']})")
    if result["missing"]:
        print(f"  not found in the code, not timed: {', '.join(result['missing'])}")
    common.print_table(
        "phases (ms), own time: nested phases (SQL inside a flush, parsing inside a fetch) are taken out of "
        "their callers, so the rows add up to the total; wall includes waiting for a core, CPU is the thread's",
        ["phase", "own wall", "own CPU", "incl. wall", "median own", "max own (project)"],
        rows,
    )
    statements: dict[str, list[int]] = {}
    for s in samples:
        for verb, count in s["db"]["statements"].items():
            statements.setdefault(verb, []).append(count)
    per = [[verb, sum(c), statistics.median(c + [0] * (len(samples) - len(c))), max(c)]
           for verb, c in sorted(statements.items())]
    per.append(["connection checkouts", sum(s["db"]["checkouts"] for s in samples),
                statistics.median(s["db"]["checkouts"] for s in samples), max(s["db"]["checkouts"] for s in samples)])
    per.append(["commits", sum(s["db"]["commits"] for s in samples),
                statistics.median(s["db"]["commits"] for s in samples), max(s["db"]["commits"] for s in samples)])
    common.print_table("database work per cold project", ["what", "sum", "median", "max"], per)
    costs = result["detectors"]
    if costs:
        for label in ("run_all", "run_name_detectors"):
            values = [c[label] for c in costs.values()]
            worst = max(costs, key=lambda n: costs[n][label])
            print(f"detectors called directly, {label}: median {statistics.median(values):.0f} µs, "
                  f"max {max(values):.0f} µs ({worst}), over the facts of {len(values)} projects")
    states = {s["state"] for s in samples}
    print(f"verdicts: {', '.join(sorted(states))}; warm repeat: median "
          f"{statistics.median(s['warm'] for s in samples) * 1000:.1f} ms")


def report_memory(result: dict[str, Any], smaps: Sequence[tuple[str, float]]) -> None:
    print(f"\nmemory, in-process (python -X tracemalloc, pages and {result['files_served']} files served): "
          f"traced {result['traced_mib']:.1f} MiB live; process RSS {result['rss_mib']:.0f} MiB of which "
          f"tracemalloc's own bookkeeping {result['tracemalloc_overhead_mib']:.0f} MiB")
    stages = result["stages_traced_mib"]
    print("  traced MiB by stage: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    common.print_table("top allocations by line (live MiB, blocks)", ["line", "MiB", "blocks"],
                       [[r["where"], f"{r['mib']:.2f}", r["blocks"]] for r in result["by_line"]])
    if result["by_project_line"]:  # only when traced with more than one frame
        common.print_table("the same, charged to the innermost mirror/detectors line on the stack",
                           ["line", "MiB", "blocks"],
                           [[r["where"], f"{r['mib']:.2f}", r["blocks"]] for r in result["by_project_line"]])
    common.print_table("live MiB by package of the allocating line", ["package", "MiB"],
                       [[r["package"], f"{r['mib']:.2f}"] for r in result["by_package"]])
    common.print_table("the server's resident memory by mapping, after the run and the page load (MiB)",
                       ["mapping", "MiB"], [[k, f"{v:.1f}"] for k, v in smaps])


def report_issue_table(summary: dict[str, dict[str, float]], memory: Sequence[RoundMemory],
                       pages: Sequence[dict[str, Any]], peak_after_load: float) -> None:
    numpy_like = next(r for r in pages if r["server"] == "mirror" and r["set"] == "numpy page")
    peak = max(m.peak_mib for m in memory)
    def peer(mode: str) -> str:
        got = summary.get(f"proxpi {mode}")
        return f"{got['ratio']:.2f}x ({got['median']:.1f} s)" if got else "not run (--peers)"

    rows = [
        ["cold (empty mirror)", f"1.0x ({summary['direct']['median']:.1f} s)",
         f"{summary['cold']['ratio']:.2f}x ({summary['cold']['median']:.1f} s)", f"<= {GOAL_COLD}x", peer("cold")],
        ["warm (everything cached)", f"1.0x ({summary['direct']['median']:.1f} s)",
         f"{summary['warm']['ratio']:.2f}x ({summary['warm']['median']:.1f} s)", f"<= {GOAL_WARM}x", peer("warm")],
        ["server RSS after the run, + live workers (peaks)", "-",
         f"{max(m.after_warm_mib for m in memory):.0f} + {max(m.workers_after_warm_mib for m in memory):.0f} MiB "
         f"(server VmHWM {peak:.0f}, {peak_after_load:.0f} after the page load; with workers "
         f"{max(m.peak_tree_mib for m in memory):.0f})", f"<= {GOAL_RSS_MIB:.0f} MiB", "-"],
        [f"warm JSON page of {numpy_like['pages'][0]}, gzip, 16 conn", "-",
         f"{numpy_like['rps']:,.0f} req/s", f">= {GOAL_PAGE_RPS:,.0f} req/s", "-"],
    ]
    common.print_table("issue 16's table, this run", ["", "direct", "IndexGuard now", "goal", "proxpi 1.3.1"], rows)


# -- the run ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    clean_environment()
    session = http_session()
    reason = unreachable_reason(session)
    if reason is not None:
        print(f"real_install: skipped, the public index cannot be reached ({reason})")
        return 0
    tool = ensure_wrk()
    pins = read_pins()
    names = [name for name, _ in pins]
    print(f"real_install: {len(pins)} pinned projects from {REQUIREMENTS.name}; python {platform.python_version()}, "
          f"pip {pip_version}, {os.cpu_count()} CPUs; {args.rounds} rounds; page load with {tool}; "
          f"load average {load()}", flush=True)
    with common.temp_workdir("indexguard-bench-real-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        runs, memory, mirror = run_rounds(work, args.rounds, len(pins), with_peers=args.peers)
        try:
            bodies = page_sizes(mirror.port, names)
            pages = [] if args.no_wrk else page_load(mirror, bodies, work, args.seconds, args.connections)
            peak_after_load = common.peak_rss_mib(mirror.proc.pid)
            smaps = rss_by_mapping(mirror.proc.pid)
        finally:
            common.stop(mirror.proc)
        filenames = runs[0].files
        look = outside_look(work, pins, filenames)
        phase_result = memory_result = None
        if not args.no_inprocess:
            phase_result = in_process("phases", work, names)
            memory_result = in_process("memory", work, names, filenames, seed_from=mirror.storage)
        results = {"runs": [asdict(r) | {"files": len(r.files)} for r in runs], "summary": summarise(runs),
                   "memory": [asdict(m) for m in memory], "peak_after_page_load_mib": peak_after_load,
                   "pages": pages, "page_kib": {n: len(b) / 1024 for n, b in bodies.items()},
                   "outside": look, "phases": phase_result, "tracemalloc": memory_result, "smaps": smaps}
        if args.json:  # before the report, so that no figure is lost to a reporting slip
            Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(f"\nreal_install: {len(filenames)} files, {runs[0].bytes / MIB:.1f} MiB per run; load average {load()}")
        summary = report_rounds(runs, memory)
        if pages:
            report_pages(pages, bodies)
        report_outside(look)
        if phase_result is not None:
            report_phases(phase_result)
        if memory_result is not None:
            report_memory(memory_result, smaps)
        else:
            common.print_table("the server's resident memory by mapping (MiB)", ["mapping", "MiB"],
                               [[k, f"{v:.1f}"] for k, v in smaps])
        if pages:
            report_issue_table(summary, memory, pages, peak_after_load)
    if args.json:
        print(f"\nresults written to {args.json}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real_install", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=common.rounds_arg, default=3, help="interleaved rounds of direct, cold and warm (default 3)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per wrk run (default 10)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--no-wrk", action="store_true", help="skip the page-throughput phase")
    p.add_argument("--no-inprocess", action="store_true", help="skip the in-process phases and tracemalloc looks")
    p.add_argument("--json", default="", help="also write every figure to this file")
    p.add_argument("--peers", action="store_true",
                   help="also run proxpi 1.3.1 (installed into its own venv on first use), cold and warm, every round")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
