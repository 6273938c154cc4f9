"""FileFetcher against a real HTTP upstream on 127.0.0.1 and a real store on disk."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from mirror.serving.fetcher import FileFetcher, LeaderFailed, prime
from mirror.upstream.errors import UpstreamError
from mirror.upstream.netguard import NetGuard, requests_opener
from mirror.serving.store import BlobStore, HashMismatch, InvalidHash, SizeMismatch, StoreError

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 64 * 1024


# -- a programmable upstream ---------------------------------------------------


@dataclass
class Route:
    """What the upstream sends for one path.

    The body is ``block`` repeated up to ``size`` bytes, produced while
    sending, so a 200 MiB file never sits in memory.
    """

    block: bytes
    size: int
    status: int = 200
    declared: int | None = -1  # Content-Length; -1 = the real size, None = close-delimited
    send: int | None = None  # bytes actually sent (fewer = a truncated body)
    gate: threading.Event | None = None  # pause after gate_after bytes until set
    gate_after: int = 0
    drip: float = 0.0  # pause between 64 KiB pieces
    released: threading.Event = field(default_factory=threading.Event)

    def body(self) -> bytes:
        return b"".join(self.pieces(0, self.size))

    def pieces(self, start: int, stop: int) -> Iterator[bytes]:
        pos = start
        while pos < stop:
            offset = pos % len(self.block)
            piece = self.block[offset : offset + min(CHUNK, stop - pos)]
            yield piece
            pos += len(piece)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hanging up is the point
            super().handle_error(request, client_address)


class Upstream:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.upstream = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def hit(self, path: str) -> Route | None:
        with self._lock:
            self.hits[path] += 1
        return self.routes.get(path)

    def close(self) -> None:
        for route in self.routes.values():
            if route.gate is not None:
                route.gate.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.server.upstream.hit(self.path)  # type: ignore[attr-defined]
        if route is None or route.status != 200:
            self.send_response(404 if route is None else route.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        declared = route.size if route.declared == -1 else route.declared
        if declared is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(declared))
        self.end_headers()
        stop = route.size if route.send is None else route.send
        try:
            if route.gate is not None:
                self._write(route, 0, min(route.gate_after, stop))
                route.gate.wait(60)
                route.released.set()
                self._write(route, min(route.gate_after, stop), stop)
            else:
                self._write(route, 0, stop)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if stop != route.size:
            self.close_connection = True

    def _write(self, route: Route, start: int, stop: int) -> None:
        for piece in route.pieces(start, stop):
            self.wfile.write(piece)
            self.wfile.flush()
            if route.drip:
                threading.Event().wait(route.drip)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def opener() -> object:
    return requests_opener(NetGuard({"127.0.0.1"}, allow_private=True), timeout=30)


def make_fetcher(store: BlobStore, **kwargs: object) -> FileFetcher:
    return FileFetcher(store, opener(), chunk_size=CHUNK, **kwargs)  # type: ignore[arg-type]


def random_route(size: int, **kwargs: object) -> Route:
    return Route(block=os.urandom(min(size, 1 << 20) or 1), size=size, **kwargs)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.tmp_dir.iterdir())


def consume(chunks: Iterator[bytes], into: list[bytes]) -> None:
    for chunk in chunks:
        into.append(chunk)


# -- the basics ------------------------------------------------------------------


def test_downloads_verifies_and_stores(upstream: Upstream, store: BlobStore) -> None:
    route = random_route(300_000)
    body = route.body()
    url = upstream.add("/f.whl", route)
    fetcher = make_fetcher(store)

    assert b"".join(fetcher.stream(sha(body), url, size=len(body))) == body
    assert store.path(sha(body)).read_bytes() == body
    assert leftovers(store) == []

    # A second request is served from the store without asking upstream.
    assert b"".join(fetcher.stream(sha(body), url)) == body
    assert upstream.hits["/f.whl"] == 1


def test_empty_file(upstream: Upstream, store: BlobStore) -> None:
    url = upstream.add("/empty", Route(block=b"x", size=0))
    assert b"".join(make_fetcher(store).stream(sha(b""), url, size=0)) == b""
    assert store.has(sha(b""))


def test_rejects_bad_hash_strings_before_any_request(upstream: Upstream, store: BlobStore) -> None:
    url = upstream.add("/f", random_route(10))
    fetcher = make_fetcher(store)
    for bad in ["../" * 10 + "etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/..", ""]:
        with pytest.raises(InvalidHash):
            fetcher.stream(bad, url)
    assert upstream.hits["/f"] == 0


def test_hash_mismatch_is_raised_before_the_last_chunk(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=512 * 1024)
    body = route.body()
    url = upstream.add("/evil.whl", route)
    pinned = sha(b"what the page promised")
    reports: list[tuple[str, str, str]] = []
    fetcher = make_fetcher(store, on_mismatch=lambda *args: reports.append(args))

    chunks = fetcher.stream(pinned, url)
    received = [next(chunks)]  # streaming has started...
    gate.set()
    with pytest.raises(HashMismatch):
        consume(chunks, received)

    got = b"".join(received)
    assert 0 < len(got) < len(body)  # streaming started, but the client never completes
    assert body.startswith(got)
    assert reports == [(pinned, url, sha(body))]
    assert not store.has(pinned) and not store.has(sha(body))
    assert leftovers(store) == []


def test_declared_size_contradicting_the_pin_is_refused(upstream: Upstream, store: BlobStore) -> None:
    route = random_route(5000)
    url = upstream.add("/f", route)
    reports: list[tuple[str, str, str]] = []
    fetcher = make_fetcher(store, on_mismatch=lambda *args: reports.append(args))
    digest = sha(route.body())
    with pytest.raises(SizeMismatch):
        b"".join(fetcher.stream(digest, url, size=4000))
    assert reports == [(digest, url, "size 5000")]
    assert not store.has(digest) and leftovers(store) == []


def test_body_longer_than_the_pin_is_cut(upstream: Upstream, store: BlobStore) -> None:
    route = random_route(1 << 20, declared=None)  # no Content-Length to check up front
    url = upstream.add("/f", route)
    digest = sha(route.body())
    received: list[bytes] = []
    with pytest.raises(SizeMismatch):
        consume(make_fetcher(store).stream(digest, url, size=100_000), received)
    assert len(b"".join(received)) < 100_000
    assert not store.has(digest) and leftovers(store) == []


@pytest.mark.parametrize("declared", [-1, None], ids=["content-length", "close-delimited"])
def test_truncated_body(upstream: Upstream, store: BlobStore, declared: int | None) -> None:
    route = random_route(1 << 20, declared=declared, send=(1 << 20) // 2)
    body = route.body()
    url = upstream.add("/f", route)
    received: list[bytes] = []
    with pytest.raises(UpstreamError):
        consume(make_fetcher(store).stream(sha(body), url, size=len(body)), received)
    assert len(b"".join(received)) < len(body) // 2
    assert not store.has(sha(body)) and leftovers(store) == []


def test_upstream_error_status_then_recovery(upstream: Upstream, store: BlobStore) -> None:
    route = random_route(1000, status=500)
    body = route.body()
    url = upstream.add("/f", route)
    fetcher = make_fetcher(store)
    with pytest.raises(UpstreamError) as caught:
        list(fetcher.stream(sha(body), url))
    assert caught.value.status == 500
    assert leftovers(store) == [] and not store.has(sha(body))

    # The failure is not sticky: once upstream recovers, the next request works.
    route.status = 200
    assert b"".join(fetcher.stream(sha(body), url)) == body
    assert upstream.hits["/f"] == 2


def test_prime_raises_before_the_response_starts(upstream: Upstream, store: BlobStore) -> None:
    url = upstream.add("/gone", random_route(10, status=404))
    with pytest.raises(UpstreamError):
        prime(make_fetcher(store).stream(sha(b"x"), url))
    url = upstream.add("/small", Route(block=b"abc", size=3))
    assert b"".join(prime(make_fetcher(store).stream(sha(b"abc"), url))) == b"abc"


# -- single flight ---------------------------------------------------------------


def test_ten_threads_one_upstream_request(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=200_000)
    body = route.body()
    url = upstream.add("/f", route)
    fetcher = make_fetcher(store)

    results: list[list[bytes]] = [[] for _ in range(10)]
    errors: list[BaseException] = []
    started = threading.Barrier(11)

    def client(i: int) -> None:
        try:
            chunks = fetcher.stream(sha(body), url, size=len(body))
            started.wait()
            consume(chunks, results[i])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    started.wait()  # every client has joined the download before upstream may finish
    gate.set()
    for t in threads:
        t.join()
    assert errors == []
    assert all(b"".join(r) == body for r in results)
    assert upstream.hits["/f"] == 1


def _fetch_in_child(root: str, url: str, digest: str, size: int, barrier: object, results: object) -> None:
    fetcher = FileFetcher(BlobStore(Path(root)), requests_opener(NetGuard({"127.0.0.1"}, allow_private=True), timeout=30), chunk_size=CHUNK)
    barrier.wait()  # type: ignore[attr-defined]
    hasher = hashlib.sha256()
    total = 0
    try:
        for chunk in fetcher.stream(digest, url, size):
            hasher.update(chunk)
            total += len(chunk)
    except Exception as exc:
        results.put(("error", repr(exc)))  # type: ignore[attr-defined]
        return
    results.put((hasher.hexdigest(), total))  # type: ignore[attr-defined]


def test_four_processes_one_upstream_request(upstream: Upstream, store: BlobStore) -> None:
    route = random_route(2 << 20, drip=0.02)  # ~0.7 s of download: the processes overlap
    body = route.body()
    url = upstream.add("/f", route)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_fetch_in_child, args=(str(store.root), url, sha(body), len(body), barrier, results))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    assert outcomes == [(sha(body), len(body))] * 4
    assert upstream.hits["/f"] == 1
    assert leftovers(store) == []


def test_follower_gets_bytes_before_upstream_finishes(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=512 * 1024)
    body = route.body()
    url = upstream.add("/f", route)
    # Two fetchers on one store behave like two worker processes.
    leader, follower = make_fetcher(store), make_fetcher(store)

    first = leader.stream(sha(body), url, size=len(body))
    second = follower.stream(sha(body), url, size=len(body))
    got_first = [next(first)]
    got_second = [next(second)]
    assert not route.released.is_set()  # both got bytes while upstream was still held
    assert body.startswith(got_second[0])

    gate.set()
    consume(first, got_first)
    consume(second, got_second)
    assert b"".join(got_first) == body == b"".join(got_second)
    assert upstream.hits["/f"] == 1


def test_client_disconnect_does_not_hurt_others(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=512 * 1024)
    body = route.body()
    url = upstream.add("/f", route)
    fetcher = make_fetcher(store)

    quitter = fetcher.stream(sha(body), url)
    stayer = fetcher.stream(sha(body), url)
    next(quitter)
    next(quitter)
    quitter.close()  # what a server does when its client goes away

    gate.set()
    assert b"".join(stayer) == body
    assert store.path(sha(body)).read_bytes() == body
    assert leftovers(store) == []
    assert upstream.hits["/f"] == 1


def test_download_completes_when_its_only_client_leaves(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=256 * 1024)
    body = route.body()
    url = upstream.add("/f", route)
    fetcher = make_fetcher(store)

    only = fetcher.stream(sha(body), url)
    next(only)
    only.close()
    assert not store.has(sha(body))  # nothing partial was published
    gate.set()

    fetcher.ensure(sha(body), url)  # joins the download still in flight
    assert store.path(sha(body)).read_bytes() == body
    assert b"".join(fetcher.stream(sha(body), url)) == body
    assert upstream.hits["/f"] == 1
    assert leftovers(store) == []


def test_follower_of_a_failed_download_fails_too(upstream: Upstream, store: BlobStore) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=512 * 1024)
    url = upstream.add("/f", route)
    pinned = sha(b"not this")

    reports: list[tuple[str, str, str]] = []
    # Two fetchers on one store behave like two worker processes; either may lead.
    fetchers = [make_fetcher(store, on_mismatch=lambda *a: reports.append(a)) for _ in range(2)]
    clients = [f.stream(pinned, url) for f in fetchers]
    received = [[next(c)] for c in clients]  # both are streaming
    gate.set()
    failures = []
    for client, got in zip(clients, received):
        with pytest.raises((HashMismatch, LeaderFailed)) as caught:
            consume(client, got)
        failures.append(type(caught.value))
        assert len(b"".join(got)) < route.size
    # The leader's client learns why; the other process's client that its leader failed.
    assert sorted(f.__name__ for f in failures) == ["HashMismatch", "LeaderFailed"]
    assert len(reports) == 1
    assert upstream.hits["/f"] == 1
    assert leftovers(store) == [] and not store.has(pinned)


# -- crashes, full disks, memory ------------------------------------------------------

_CHILD_THAT_STALLS = """
import sys
from pathlib import Path
from mirror.serving.fetcher import FileFetcher
from mirror.upstream.netguard import NetGuard, requests_opener
from mirror.serving.store import BlobStore

root, url, digest = sys.argv[1:4]
fetcher = FileFetcher(BlobStore(Path(root)), requests_opener(NetGuard({"127.0.0.1"}, True), timeout=60), chunk_size=65536)
chunks = fetcher.stream(digest, url)
next(chunks)
print("streaming", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("first", ["restart", "request"])
def test_sigkill_mid_download_then_recovery(upstream: Upstream, store: BlobStore, first: str) -> None:
    gate = threading.Event()
    route = random_route(1 << 20, gate=gate, gate_after=512 * 1024)
    body = route.body()
    url = upstream.add("/f", route)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_THAT_STALLS, str(store.root), url, sha(body)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "streaming"
        partials = leftovers(store)
        assert len(partials) == 1
        # A live download in another process is never cleaned away.
        assert store.cleanup_stale_temps(max_age=0) == []
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    gate.set()
    assert leftovers(store) == partials  # the killed writer's temp file remains
    assert not store.has(sha(body))

    if first == "restart":  # start-up cleanup removes it
        assert [p.name for p in store.cleanup_stale_temps(max_age=0)] == partials
        assert leftovers(store) == []
    # The next request succeeds (and its download clears any leftover of that file).
    assert b"".join(make_fetcher(store).stream(sha(body), url, size=len(body))) == body
    assert upstream.hits["/f"] == 2
    assert leftovers(store) == []
    assert store.path(sha(body)).read_bytes() == body


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem, so writes fail with ENOSPC."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_disk_full_during_download(upstream: Upstream, small_disk: Path) -> None:
    store = BlobStore(small_disk / "store")
    route = random_route(3 << 20)
    body = route.body()
    url = upstream.add("/big", route)
    received: list[bytes] = []
    with pytest.raises(StoreError, match="no space"):
        consume(make_fetcher(store).stream(sha(body), url), received)
    assert len(b"".join(received)) < len(body)
    assert leftovers(store) == [] and not store.has(sha(body))
    assert list(store.blobs_dir.rglob("*")) == []


_CHILD_MEASURING_MEMORY = """
import hashlib, json, resource, sys
from pathlib import Path
from mirror.serving.fetcher import FileFetcher
from mirror.upstream.netguard import NetGuard, requests_opener
from mirror.serving.store import BlobStore

root, small_url, small_sha, url, digest, size, keep = sys.argv[1:8]
fetcher = FileFetcher(BlobStore(Path(root)), requests_opener(NetGuard({"127.0.0.1"}, True), timeout=60))
b"".join(fetcher.stream(small_sha, small_url))  # warm up every code path first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hasher, total, kept = hashlib.sha256(), 0, []
for chunk in fetcher.stream(digest, url, int(size)):
    hasher.update(chunk)
    total += len(chunk)
    if keep == "keep":  # the control run: a consumer that does hold the file
        kept.append(chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"sha256": hasher.hexdigest(), "bytes": total, "before_kib": before, "after_kib": after}))
"""


_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def test_memory_stays_flat_for_a_200_mib_file(upstream: Upstream, tmp_path: Path) -> None:
    size = 200 << 20
    route = random_route(size)
    hasher = hashlib.sha256()
    for piece in route.pieces(0, size):
        hasher.update(piece)
    big_url = upstream.add("/big", route)
    small_url = upstream.add("/small", Route(block=b"warm-up", size=7))

    def growth_kib(mode: str) -> int:
        # ru_maxrss survives exec: a child forked straight from this (large)
        # test process would start with our peak as its own.  A small
        # launcher in between gives the measuring child a clean start.
        done = subprocess.run(
            [
                sys.executable, "-c", _LAUNCHER,
                sys.executable, "-c", _CHILD_MEASURING_MEMORY, str(tmp_path / mode),
                small_url, sha(b"warm-up"), big_url, hasher.hexdigest(), str(size), mode,
            ],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        report = json.loads(done.stdout)
        assert report["sha256"] == hasher.hexdigest() and report["bytes"] == size
        assert report["before_kib"] < 100 * 1024, report  # the baseline is the child's own
        return int(report["after_kib"]) - int(report["before_kib"])

    streamed = growth_kib("stream")
    control = growth_kib("keep")  # proves the measurement sees a file held in memory
    print(f"peak RSS growth for 200 MiB: streamed {streamed} KiB, held (control) {control} KiB")
    assert control > 100 * 1024
    assert streamed < 32 * 1024
