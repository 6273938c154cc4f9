"""The server itself bounds header-read time, idle time and open connections (issue 12, item 5).

The attack: ~20,000 connections sending partial headers exhausted the file
descriptors, ``/healthz`` stopped answering, and silent connections stayed
open over 90 s.  These tests open real sockets on 127.0.0.1 against uvicorn
configured exactly as ``indexguard serve`` configures it
(``mirror.web.connections.server_options``), and one against ``serve`` itself.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
import uvicorn

from mirror.app import create_app
from mirror.config import SettingsError, settings_from_mapping
from mirror.db.models import Decision
from mirror.web.connections import LINGER_SECONDS, server_options
from tests.faults.serving import ServerProcess, write_config
from tests.hardening.rawhttp import answer_before_body, head, wait_closed
from tests.support.running import mirror_settings
from tests.support.publish import publish

HEADER_TIMEOUT = 1.0
KEEP_ALIVE = 1.0
MAX_CONNECTIONS = 120
MAX_HEADER_BYTES = 4096
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


class GuardedServer:
    """The app under uvicorn with ``[server]``'s connection limits, in a thread."""

    def __init__(self, settings) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", **server_options(settings.server))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "GuardedServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture
def server(index_server, tmp_path: Path) -> Iterator[GuardedServer]:
    settings = mirror_settings(
        upstream_url=index_server.simple_url,
        database_url=f"sqlite:///{tmp_path / 'mirror.db'}",
        storage=tmp_path / "data",
        server={"header_timeout": HEADER_TIMEOUT, "keep_alive_timeout": KEEP_ALIVE, "max_connections": MAX_CONNECTIONS,
                "max_header_bytes": MAX_HEADER_BYTES},
    )
    with GuardedServer(settings) as running:
        yield running


def healthz(url: str) -> float:
    """Seconds ``/healthz`` took on a fresh connection (it must answer 200)."""
    start = time.monotonic()
    response = requests.get(url + "healthz", timeout=5, headers={"Connection": "close"})
    assert response.status_code == 200
    return time.monotonic() - start


def test_silent_slow_and_partial_clients_are_cut_off_at_the_header_timeout(server: GuardedServer) -> None:
    silent, partial, dribbling = server.connect(), server.connect(), server.connect()
    partial.sendall(PARTIAL)
    dribbling.sendall(PARTIAL)
    stop = threading.Event()

    def dribble() -> None:  # a byte every 0.2 s: sending slowly must not extend the deadline
        while not stop.wait(0.2):
            try:
                dribbling.sendall(b"x")
            except OSError:
                return

    threading.Thread(target=dribble, daemon=True).start()
    try:
        for sock in (silent, partial, dribbling):
            took, received = wait_closed(sock, limit=HEADER_TIMEOUT + 4)
            assert took < HEADER_TIMEOUT + 1.5, f"still open after {took:.1f} s"
            assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]
    finally:
        stop.set()
        for sock in (silent, partial, dribbling):
            sock.close()
    assert healthz(server.url) < 2


def test_a_slow_request_on_a_kept_alive_connection_is_cut_off_too(server: GuardedServer) -> None:
    sock = server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.sendall(PARTIAL)  # the next request starts, and never ends
    took, _ = wait_closed(sock, limit=HEADER_TIMEOUT + 4)
    sock.close()
    assert took < HEADER_TIMEOUT + 1.5


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(server: GuardedServer) -> None:
    sock = server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    took, _ = wait_closed(sock, limit=KEEP_ALIVE + 4)
    sock.close()
    assert took < KEEP_ALIVE + 1.5


def test_healthz_answers_while_idle_connections_are_open_and_excess_ones_are_closed(server: GuardedServer) -> None:
    idle = [server.connect() for _ in range(MAX_CONNECTIONS - 20)]
    try:
        for sock in idle:
            sock.sendall(PARTIAL)
        assert healthz(server.url) < 1  # the server still has room: it answers at once
        excess = [server.connect() for _ in range(40)]
        idle += excess
        closed_at_once = 0
        for sock in excess:
            took, _ = wait_closed(sock, limit=0.5)
            closed_at_once += took < 0.5
        # Past the cap connections are closed on arrival instead of each holding a descriptor.
        assert closed_at_once >= 15, closed_at_once
        time.sleep(HEADER_TIMEOUT + 1)  # the partial ones are cut off: the server has room again
        assert healthz(server.url) < 1
    finally:
        for sock in idle:
            sock.close()


def test_indexguard_serve_applies_the_limits(index_server, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", {
        "server": {"header_timeout": HEADER_TIMEOUT, "keep_alive_timeout": KEEP_ALIVE},
        "storage": {"path": str(tmp_path / "data")},
        "upstream": {"url": index_server.simple_url},
        "audit": {"interval_hours": 0, "vulnerability_service": "none"},
    })
    with ServerProcess(config, tmp_path / "serve.log") as served:
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        sock.sendall(PARTIAL)
        took, received = wait_closed(sock, limit=HEADER_TIMEOUT + 4)
        sock.close()
        assert took < HEADER_TIMEOUT + 1.5, served.output()
        assert received.startswith(b"HTTP/1.1 408")


def test_a_request_head_growing_past_max_header_bytes_is_refused(server: GuardedServer) -> None:
    fits = "X-Pad: " + "a" * (MAX_HEADER_BYTES // 2)
    assert answer_before_body(server.port, head("GET", "/healthz", server.port, fits))[0] == 200
    sock = server.connect()
    sock.sendall(PARTIAL)
    started = time.monotonic()
    try:
        for _ in range(4):  # a head that never ends, in pieces: counted as it arrives, refused at the cap
            sock.sendall(b"a" * (MAX_HEADER_BYTES // 2))
            time.sleep(0.05)
    except OSError:
        pass  # closed on us already
    _, received = wait_closed(sock, limit=LINGER_SECONDS + 2)
    took = time.monotonic() - started
    sock.close()
    # Refused for its size, and readable: the server lingers instead of resetting the connection.
    assert received.startswith(b"HTTP/1.1 431"), received[:200]
    assert took < LINGER_SECONDS + 1


def test_a_head_whose_blank_line_is_split_across_reads_is_measured_to_its_end(server: GuardedServer) -> None:
    """A head under the cap whose final CRLF CRLF arrives in two reads is served; one a byte over it is not."""
    fits = head("GET", "/healthz", server.port, "X-Pad: " + "a" * (MAX_HEADER_BYTES - 200))
    assert len(fits) < MAX_HEADER_BYTES
    sock = server.connect()
    sock.sendall(fits[:-3])
    time.sleep(0.05)  # the blank line now straddles two reads
    sock.sendall(fits[-3:])
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()
    over = head("GET", "/healthz", server.port, "X-Pad: " + "a" * MAX_HEADER_BYTES)
    sock = server.connect()
    sock.sendall(over)
    _, received = wait_closed(sock, limit=LINGER_SECONDS + 2)
    sock.close()
    assert received.startswith(b"HTTP/1.1 431"), received[:200]


def test_pipelined_requests_are_each_answered(server: GuardedServer) -> None:
    """Two requests sent back to back on one connection get two answers, in order."""
    one = head("GET", "/healthz", server.port, "X-N: 1")
    sock = server.connect()
    sock.sendall(one + one)
    received = b""
    deadline = time.monotonic() + 5
    while received.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received.count(b"HTTP/1.1 200") == 2, received[:500]


@pytest.mark.parametrize("key, value", [
    ("header_timeout", 0), ("keep_alive_timeout", -1), ("max_connections", 1), ("max_header_bytes", 100),
    ("max_body_bytes", 10),
])
def test_connection_and_body_limits_are_validated(key: str, value: float) -> None:
    with pytest.raises(SettingsError, match=f"server.{key}"):
        settings_from_mapping({"server": {key: value}})


@pytest.mark.parametrize("trusted, recorded", [([], "127.0.0.1"), (["127.0.0.0/8"], "203.0.113.9")])
def test_x_forwarded_for_is_believed_only_from_configured_proxies(start_mirror, index_server, tmp_path,
                                                                  trusted, recorded) -> None:
    mirror = start_mirror(server={"trusted_proxies": trusted})
    publish(index_server, tmp_path, "quiet-otter")
    response = requests.get(mirror.simple_url + "quiet-otter/", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    assert response.status_code == 200
    with mirror.services.sessions() as session:
        decision = session.query(Decision).filter_by(project="quiet-otter").one()
    assert decision.request["client"] == recorded
