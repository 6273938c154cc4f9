"""NetGuard: URLs from hostile pages, against real sockets on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mirror.upstream.errors import BlockedURL, UpstreamError
from mirror.upstream.netguard import (
    NetGuard,
    guarded_get,
    guarded_session,
    host_entry,
    is_public_address,
    redact_url,
    requests_opener,
    upstream_guard,
    url_host_entry,
)

PUBLIC = "93.184.216.34"  # a documentation-free, globally routed address; never contacted


class _Handler(BaseHTTPRequestHandler):
    """/ok, /redirect?to=URL, /loop, /auth (echoes whether credentials arrived), else 404."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.hits[parts.path] += 1  # type: ignore[attr-defined]
        if parts.path == "/redirect":
            self._send(302, b"", Location=parse_qs(parts.query)["to"][0])
        elif parts.path == "/loop":
            self._send(302, b"", Location="/loop")
        elif parts.path == "/ok":
            self._send(200, b"ok")
        elif parts.path == "/auth":
            self._send(200, b"auth:yes" if self.headers.get("Authorization") else b"auth:no")
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base(httpd: ThreadingHTTPServer, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{httpd.server_address[1]}"


def local_guard() -> NetGuard:
    """The guard the mirror uses when its configured upstream is local."""
    return NetGuard({"127.0.0.1", "localhost"}, allow_private=True)


def rebinding_guard(hosts: set[str] | None = None) -> NetGuard:
    """Its DNS says ``localhost`` is public; the socket will still reach 127.0.0.1."""
    return NetGuard(hosts, resolve=lambda host, port: [PUBLIC] if host == "localhost" else [])


class LoopbackAsPublic(NetGuard):
    """Treats our loopback test server as if it were a public host, and nothing else."""

    def address_allowed(self, address: str) -> bool:
        return address == "127.0.0.1" or super().address_allowed(address)


# -- addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1",
        "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1",
        "fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
        "2002:7f00:1::1", "2002:a00:1::1", "64:ff9b::7f00:1", "not an address",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


# -- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://files.example/x.whl",
        "data:text/plain,hi",
        "gopher://files.example/",
        "//files.example/x.whl",
        "files.example/x.whl",
        "http:///x.whl",
        "",
    ],
)
def test_only_http_urls_with_a_host(url: str) -> None:
    guard = NetGuard(None, resolve=lambda host, port: [PUBLIC])
    with pytest.raises(BlockedURL):
        guard.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x", "http://0x7f.1/x",
        "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x", "http://[fe80::1]/x", "http://0.0.0.0/x", "http://localhost/x",
        "https://LOCALHOST./x",
    ],
)
def test_private_targets_are_blocked(url: str) -> None:
    with pytest.raises(BlockedURL):
        NetGuard(None).check_url(url)


def test_host_allow_list() -> None:
    guard = NetGuard({"files.example", "Index.Example."}, resolve=lambda host, port: [PUBLIC])
    guard.check_url("https://files.example/p/x.whl")
    guard.check_url("https://FILES.example./p/x.whl")
    guard.check_url("http://index.example:8080/simple/")
    for url in [
        "https://other.example/x.whl",
        "https://files.example@other.example/x.whl",
        "https://files.example\\@other.example/x.whl",
        "https://files.example.other.example/x.whl",
        "https://fïles.example/x.whl",
        "https://files.example /x.whl",
        "https://files.example:99999/x.whl",
    ]:
        with pytest.raises(BlockedURL):
            guard.check_url(url)
    guard.allow_hosts({"mirror.example"})
    guard.check_url("https://mirror.example/x.whl")


def test_every_resolved_address_must_be_public() -> None:
    guard = NetGuard({"files.example"}, resolve=lambda host, port: [PUBLIC, "10.0.0.7"])
    with pytest.raises(BlockedURL, match="10.0.0.7"):
        guard.check_url("https://files.example/x.whl")
    unresolvable = NetGuard({"files.example"}, resolve=lambda host, port: [])
    with pytest.raises(UpstreamError):
        unresolvable.check_url("https://files.example/x.whl")


def test_allow_private_lets_a_local_upstream_through(server: ThreadingHTTPServer) -> None:
    guard = local_guard()
    guard.check_url(base(server) + "/ok")
    response = guarded_get(guarded_session(guard), base(server) + "/ok", guard=guard, timeout=5)
    assert response.status_code == 200 and response.content == b"ok"
    with pytest.raises(BlockedURL):  # the host list still applies
        guard.check_url("http://10.0.0.1/x")


# -- the socket that actually connected ------------------------------------------------


def test_dns_rebinding_is_caught_at_connect_time(server: ThreadingHTTPServer) -> None:
    guard = rebinding_guard({"localhost"})
    guard.check_url(base(server, "localhost") + "/ok")  # the name check alone is fooled
    for session in (guarded_session(guard), requests.Session()):  # a plain session gets guarded too
        with pytest.raises(BlockedURL, match="non-public address 127.0.0.1"):
            guarded_get(session, base(server, "localhost") + "/ok", guard=guard, timeout=5)
    assert server.hits["/ok"] == 0  # type: ignore[attr-defined]


# -- redirects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/internal",
        "http://[::1]/x",
        "http://127.0.0.1:{port}/ok",
        "http://[::ffff:127.0.0.1]:{port}/ok",
    ],
)
def test_redirects_to_private_or_odd_targets_are_blocked(server: ThreadingHTTPServer, target: str) -> None:
    guard = LoopbackAsPublic(None, resolve=lambda host, port: [PUBLIC] if host == "localhost" else [])
    target = target.format(port=server.server_address[1])
    url = base(server, "localhost") + "/redirect?" + requests.compat.urlencode({"to": target})
    with pytest.raises(BlockedURL):
        guarded_get(guarded_session(guard), url, guard=guard, timeout=5)
    assert server.hits["/redirect"] == 1  # type: ignore[attr-defined]
    assert server.hits["/ok"] == 0  # type: ignore[attr-defined]


def test_redirect_to_a_host_off_the_list_is_blocked(server: ThreadingHTTPServer) -> None:
    guard = NetGuard({"127.0.0.1"}, allow_private=True)
    url = base(server) + "/redirect?to=" + base(server, "localhost") + "/ok"
    with pytest.raises(BlockedURL):
        guarded_get(guarded_session(guard), url, guard=guard, timeout=5)
    assert server.hits["/ok"] == 0  # type: ignore[attr-defined]


def test_allowed_redirects_are_followed_and_bounded(server: ThreadingHTTPServer) -> None:
    guard = local_guard()
    session = guarded_session(guard)
    inner = "/redirect?to=/ok"
    response = guarded_get(session, base(server) + "/redirect?to=" + requests.compat.quote(inner), guard=guard, timeout=5)
    assert response.content == b"ok"
    with pytest.raises(requests.TooManyRedirects):
        guarded_get(session, base(server) + "/loop", guard=guard, timeout=5, max_redirects=3)
    assert server.hits["/loop"] == 4  # type: ignore[attr-defined]


def test_credentials_do_not_follow_a_redirect_to_another_origin(server: ThreadingHTTPServer) -> None:
    guard = local_guard()
    session = guarded_session(guard)
    headers = {"Authorization": "Bearer s3cret"}
    same = base(server) + "/redirect?to=/auth"
    other = base(server) + "/redirect?to=" + base(server, "localhost") + "/auth"
    assert guarded_get(session, same, guard=guard, timeout=5, headers=headers).content == b"auth:yes"
    assert guarded_get(session, other, guard=guard, timeout=5, headers=headers).content == b"auth:no"


# -- the FileFetcher adapter --------------------------------------------------------------


def test_requests_opener_streams_a_body(server: ThreadingHTTPServer) -> None:
    body = requests_opener(local_guard(), timeout=5)(base(server) + "/ok")
    try:
        assert body.content_length == 2
        assert b"".join(body.iter_chunks()) == b"ok"
    finally:
        body.close()


def test_requests_opener_errors_are_clear_and_carry_no_credentials(server: ThreadingHTTPServer) -> None:
    open_upstream = requests_opener(local_guard(), timeout=5)
    url = f"http://user:s3cret@127.0.0.1:{server.server_address[1]}/missing?token=s3cret"
    with pytest.raises(UpstreamError) as caught:
        open_upstream(url)
    assert caught.value.status == 404
    assert "404" in str(caught.value) and "s3cret" not in str(caught.value)

    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    with pytest.raises(UpstreamError) as caught:
        open_upstream(f"http://user:s3cret@127.0.0.1:{port}/x?token=s3cret")
    assert "ConnectionError" in str(caught.value) and "s3cret" not in str(caught.value)

    with pytest.raises(BlockedURL):
        requests_opener(NetGuard({"127.0.0.1"}), timeout=5)(base(server) + "/ok")
    assert server.hits["/ok"] == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw@files.example/p/x.whl", "https://files.example/p/x.whl"),
        ("https://__token__:pypi-abc@files.example/x", "https://files.example/x"),
        (
            "https://files.example/x.whl?token=abc&v=1&X-Amz-Signature=zz&api_key=k#sha256=00",
            "https://files.example/x.whl?token=***&v=1&X-Amz-Signature=***&api_key=***#sha256=00",
        ),
        ("https://files.example/x.whl", "https://files.example/x.whl"),
        ("http://[::1", "<unparseable URL>"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


# -- host and port pinning (an upstream on a private address) --------------------------


@pytest.fixture
def other_server() -> Iterator[ThreadingHTTPServer]:
    """Another service on the upstream's own host, on another port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("Index.Example", ("index.example", None)),
        ("index.example:8443", ("index.example", 8443)),
        ("[::1]:3141", ("::1", 3141)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
    ],
)
def test_host_entries(entry: str, expected: tuple[str, int | None]) -> None:
    assert host_entry(entry) == expected


@pytest.mark.parametrize("entry", ["host:0", "host:99999", "host:http", "[::1]x"])
def test_bad_host_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        NetGuard({entry})


def test_a_pinned_port_refuses_the_same_hosts_other_ports(
    server: ThreadingHTTPServer, other_server: ThreadingHTTPServer
) -> None:
    guard = NetGuard({url_host_entry(base(server))}, allow_private=True)
    assert guard.allowed_hosts == {f"127.0.0.1:{server.server_address[1]}"}
    guard.check_url(base(server) + "/ok")
    with pytest.raises(BlockedURL, match="not an allowed upstream host and port"):
        guard.check_url(base(other_server) + "/ok")
    with pytest.raises(BlockedURL):
        guard.check_url("http://127.0.0.1/ok")  # the default port is a port too
    session = guarded_session(guard)
    redirect = base(server) + "/redirect?to=" + base(other_server) + "/ok"
    with pytest.raises(BlockedURL):
        guarded_get(session, redirect, guard=guard, timeout=5)
    with pytest.raises(BlockedURL):
        requests_opener(guard, timeout=5)(base(other_server) + "/ok")
    assert other_server.hits["/ok"] == 0  # type: ignore[attr-defined]


def test_upstream_guard_pins_a_local_upstreams_port_and_adds_file_hosts(
    server: ThreadingHTTPServer, other_server: ThreadingHTTPServer
) -> None:
    guard = upstream_guard(base(server) + "/simple/", ["files.internal"])
    assert guard.allow_private
    guard.check_url(base(server) + "/packages/x.whl")
    guard.check_url("http://files.internal:8080/x.whl")  # a bare file host: any port of it
    with pytest.raises(BlockedURL):
        guard.check_url(base(other_server) + "/x.whl")
    public = upstream_guard(f"https://{PUBLIC}/simple/")
    assert public.allowed_hosts is None and not public.allow_private


def test_credentials_stay_dropped_once_a_redirect_left_the_origin(
    server: ThreadingHTTPServer, other_server: ThreadingHTTPServer
) -> None:
    guard = NetGuard(None, allow_private=True)
    session = guarded_session(guard)
    session.auth = ("session", "credentials")  # never applied: auth is scoped per request
    back_home = base(server) + "/auth"
    away = base(other_server) + "/redirect?to=" + requests.compat.quote(back_home)
    start = base(server) + "/redirect?to=" + requests.compat.quote(away)
    assert guarded_get(session, start, guard=guard, timeout=5, auth=("u", "p")).content == b"auth:no"
    assert guarded_get(session, base(server) + "/auth", guard=guard, timeout=5).content == b"auth:no"
    assert guarded_get(session, back_home, guard=guard, timeout=5, auth=("u", "p")).content == b"auth:yes"


def test_credentials_in_the_url_go_to_its_origin_only(
    server: ThreadingHTTPServer, other_server: ThreadingHTTPServer
) -> None:
    guard = NetGuard(None, allow_private=True)
    session = guarded_session(guard)
    port = server.server_address[1]
    with_userinfo = f"http://reader:t0ken@127.0.0.1:{port}"
    assert guarded_get(session, with_userinfo + "/auth", guard=guard, timeout=5).content == b"auth:yes"
    away = with_userinfo + "/redirect?to=" + base(other_server) + "/auth"
    assert guarded_get(session, away, guard=guard, timeout=5).content == b"auth:no"
    planted = base(server) + "/redirect?to=" + f"http://x:y@127.0.0.1:{other_server.server_address[1]}/auth"
    assert guarded_get(session, planted, guard=guard, timeout=5).content == b"auth:no"
