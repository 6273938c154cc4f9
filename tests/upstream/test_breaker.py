"""The circuit breaker: a down or hanging upstream fails fast after a few tries, and recovers."""

from __future__ import annotations

import socket
import time

import pytest

from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.client import UpstreamClient
from mirror.upstream.errors import CircuitOpen, UpstreamError, UpstreamUnreachable
from mirror.upstream.netguard import NetGuard, origin, requests_opener, url_host_entry
from tests.support.index_server import IndexServer
from tests.support.publish import publish


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(url: str, breaker: CircuitBreaker, timeout: float = 5) -> UpstreamClient:
    guard = NetGuard({url_host_entry(url)}, allow_private=True)
    return UpstreamClient(url, timeout=timeout, max_page_bytes=1 << 20, guard=guard, breaker=breaker)


def test_refused_connections_open_the_breaker_then_a_trial_closes_it(tmp_path) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, window=30, cooldown=10, monotonic=clock)
    port = closed_port()  # upstream is started later on this port
    url = f"http://127.0.0.1:{port}/simple/"
    upstream = client(url, breaker)
    for _ in range(3):
        with pytest.raises(UpstreamUnreachable):
            upstream.fetch_project("quiet-otter")
    with pytest.raises(CircuitOpen, match="not trying again for 10 s") as caught:
        upstream.fetch_project("quiet-otter")
    assert isinstance(caught.value, UpstreamError) and caught.value.retry_after == pytest.approx(10)
    assert breaker.is_open(origin(url))
    clock.now += 10  # cool-down over: one trial goes through
    server = IndexServer(port=port).start()
    try:
        publish(server, tmp_path, "quiet-otter")
        assert upstream.fetch_project("quiet-otter").page.files
        assert not breaker.is_open(origin(url))
        assert upstream.fetch_project("quiet-otter").page.files
    finally:
        server.stop()


def test_a_hanging_upstream_costs_the_timeout_only_until_the_breaker_opens(index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    breaker = CircuitBreaker(2, window=30, cooldown=60)
    upstream = client(index_server.simple_url, breaker, timeout=0.5)
    with index_server.fault("/simple/", "hang", seconds=5):
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(UpstreamUnreachable, match="ReadTimeout"):
                upstream.fetch_project("quiet-otter")
            assert time.monotonic() - started >= 0.5
        started = time.monotonic()
        with pytest.raises(CircuitOpen):
            upstream.fetch_project("quiet-otter")
        assert time.monotonic() - started < 0.1  # failed fast, no request sent
    assert index_server.count_requests("/simple/") == 2
    with pytest.raises(CircuitOpen):
        upstream.fetch_project_json("quiet-otter")  # the same origin: the JSON API too
    assert index_server.count_requests("/pypi/") == 0


def test_a_failed_trial_opens_it_again_and_other_requests_wait_for_the_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2, window=30, cooldown=10, monotonic=clock)
    key = "http://127.0.0.1:1"
    for _ in range(2):
        breaker.before(key)
        breaker.after(key, failed=True)
    clock.now += 10
    breaker.before(key)  # the trial
    with pytest.raises(CircuitOpen, match="trial request"):
        breaker.before(key)  # everyone else still fails fast meanwhile
    breaker.after(key, failed=True)
    with pytest.raises(CircuitOpen, match="10 s"):
        breaker.before(key)  # one failed trial is enough to open it again


def test_failures_spread_beyond_the_window_or_broken_by_an_answer_do_not_open_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, window=30, cooldown=10, monotonic=clock)
    key = "http://127.0.0.1:1"

    def attempt(failed: bool | None) -> None:
        breaker.before(key)
        breaker.after(key, failed=failed)

    for outcome in (True, True, False, True, None, True):  # an answer resets the count
        attempt(outcome)
    assert not breaker.is_open(key)
    clock.now += 40
    attempt(True)  # a third failure in a row, but 40 s after the first
    attempt(True)
    assert not breaker.is_open(key)
    attempt(True)  # now three within 30 s
    assert breaker.is_open(key)


def test_zero_failures_disables_it() -> None:
    breaker = CircuitBreaker(0, window=30, cooldown=10)
    for _ in range(100):
        breaker.before("k")
        breaker.after("k", failed=True)
    breaker.before("k")


def test_file_downloads_share_the_breaker() -> None:
    breaker = CircuitBreaker(2, window=30, cooldown=60)
    url = f"http://127.0.0.1:{closed_port()}/packages/x-1.0.whl"
    opener = requests_opener(NetGuard({url_host_entry(url)}, allow_private=True), timeout=5, breaker=breaker)
    for _ in range(2):
        with pytest.raises(UpstreamUnreachable, match="ConnectionError"):
            opener(url)
    with pytest.raises(CircuitOpen):
        opener(url)
