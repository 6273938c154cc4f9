"""The network guard: every URL the mirror fetches is checked before it is followed.

Upstream pages are input we do not control: a hostile page can point a
file link (or a redirect) at ``file:``, at the cloud metadata address, or at
a service inside our network.  So a URL is followed only if its scheme is
http(s), its host is one the configured upstream is known to use, and every
address the host resolves to is public.  The address is checked twice:
once by name before the request, and again on the socket that actually
connected, which defeats DNS answers that change between the two.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Callable, Iterable, Iterator, Mapping
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from mirror import __version__

USER_AGENT = f"indexguard/{__version__}"
DEFAULT_CHUNK_SIZE = 256 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters whose values are credentials (exact names, then name fragments).
_SECRET_PARAMS = frozenset({"key", "sig", "code", "pass", "pwd", "jwt", "sas"})
_SECRET_PARTS = (
    "token", "secret", "signature", "password", "passwd", "credential",
    "auth", "apikey", "api_key", "api-key", "session",
)
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")


class UpstreamError(Exception):
    """Upstream could not give us the file: unreachable, an error status, a cut body."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BlockedURL(UpstreamError):
    """The guard refused to follow a URL (scheme, host or address not allowed)."""


Resolver = Callable[[str, int], Iterable[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UpstreamError(f"cannot resolve {host}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """True only for addresses on the public internet.

    Private, loopback, link-local, multicast, reserved, shared (CGNAT) and
    unspecified addresses are refused, including IPv4 ones wrapped in IPv6
    (mapped, 6to4), which ``ipaddress`` alone would call global.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None and not _is_public(ip.sixtofour):
            return False
        if ip.is_site_local:
            return False
    return _is_public(ip)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def redact_url(url: str) -> str:
    """``url`` fit for a log line: no userinfo, no credential-looking query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(_redact_param(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_param(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    lowered = unquote_plus(name).lower()
    if sep and (lowered in _SECRET_PARAMS or any(part in lowered for part in _SECRET_PARTS)):
        return f"{name}=***"
    return pair


class NetGuard:
    """Decides which URLs may be fetched.

    ``allowed_hosts`` is the upstream host plus the hosts its pages link
    files to; ``None`` lifts the host check (addresses are still checked).
    ``allow_private`` lifts the address check, for an upstream that is
    itself on a private or loopback address (tests, an internal index).
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str] | None,
        allow_private: bool = False,
        *,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._lock = threading.Lock()
        self._hosts: frozenset[str] | None = (
            None if allowed_hosts is None else frozenset(_normal_host(h) for h in allowed_hosts)
        )
        self.allow_private = allow_private
        self._resolve = resolve

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        return self._hosts

    def allow_hosts(self, hosts: Iterable[str]) -> None:
        """Add hosts (say, a file host newly seen on an upstream page)."""
        with self._lock:
            if self._hosts is not None:
                self._hosts = self._hosts | {_normal_host(h) for h in hosts}

    def check_url(self, url: str) -> None:
        """Raise BlockedURL unless ``url`` may be fetched (UpstreamError if unresolvable)."""
        scheme, host, port = _parse(url)
        hosts = self._hosts
        if hosts is not None and host not in hosts:
            raise BlockedURL(f"host {host!r} is not an allowed upstream host: {redact_url(url)}")
        if self.allow_private:
            return
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = list(self._resolve(host, port))
        if not addresses:
            raise UpstreamError(f"{host} resolves to no address")
        for address in addresses:
            if not is_public_address(address):
                raise BlockedURL(
                    f"host {host!r} resolves to non-public address {address}: {redact_url(url)}"
                )

    def address_allowed(self, address: str) -> bool:
        """Whether a connection to ``address`` may be used."""
        return self.allow_private or is_public_address(address)


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, refusing anything parsers could disagree on."""
    if not isinstance(url, str) or not url:
        raise BlockedURL("empty URL")
    if any(c.isspace() or c == "\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise BlockedURL(
            f"URL contains whitespace, control characters or backslashes: {redact_url(url)!r}"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise BlockedURL(f"malformed URL {redact_url(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BlockedURL(f"scheme {scheme or '(none)'!r} is not allowed: {redact_url(url)!r}")
    if not host:
        raise BlockedURL(f"URL has no host: {redact_url(url)!r}")
    if not host.isascii():
        raise BlockedURL(f"non-ASCII host names are not followed: {redact_url(url)!r}")
    host = _normal_host(host)
    # requests connects wherever urllib3 thinks the host is; refuse URLs
    # where the two parsers would not agree (the classic SSRF bypass).
    try:
        other = urllib3.util.parse_url(url).host
    except urllib3.exceptions.LocationParseError:
        other = None
    if other is None or _normal_host(other) != host:
        raise BlockedURL(f"ambiguous URL authority: {redact_url(url)!r}")
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


# -- connect-time check ----------------------------------------------------


class GuardedAdapter(HTTPAdapter):
    """A requests transport whose sockets are refused unless the peer address is allowed."""

    def __init__(self, guard: NetGuard, **kwargs: object) -> None:
        self.guard = guard  # set first: HTTPAdapter.__init__ builds the pool manager
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kw: object
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = _guarded_pools(self.guard)


def _guarded_pools(guard: NetGuard) -> dict[str, type[HTTPConnectionPool]]:
    def check_peer(sock: socket.socket, host: str) -> socket.socket:
        try:
            peer = str(sock.getpeername()[0])
        except OSError:
            sock.close()
            raise
        if not guard.address_allowed(peer):
            sock.close()
            raise BlockedURL(f"connection to {host} reached non-public address {peer}")
        return sock

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return check_peer(super()._new_conn(), self.host)

    class TLSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return check_peer(super()._new_conn(), self.host)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


def guarded_session(guard: NetGuard, *, pool_maxsize: int = 32) -> requests.Session:
    """A session for upstream traffic: guarded sockets, no proxies or netrc from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    adapter = GuardedAdapter(guard, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_mount_lock = threading.Lock()


def _ensure_guarded(session: requests.Session, guard: NetGuard) -> None:
    with _mount_lock:
        for prefix in ("http://", "https://"):
            adapter = session.adapters.get(prefix)
            if not (isinstance(adapter, GuardedAdapter) and adapter.guard is guard):
                session.mount(prefix, GuardedAdapter(guard))


def guarded_get(
    session: requests.Session,
    url: str,
    *,
    guard: NetGuard,
    timeout: float | tuple[float, float],
    stream: bool = True,
    max_redirects: int = 5,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """GET ``url``, following redirects by hand so every hop passes ``guard``.

    The session's http/https transports are replaced by guarded ones on
    first use (so the connect-time check applies to any session).
    Credential headers are dropped when a redirect leaves the origin.
    Raises BlockedURL, requests.TooManyRedirects, or requests' own errors.
    """
    _ensure_guarded(session, guard)
    request_headers = dict(headers or {})
    current = url
    for _ in range(max_redirects + 1):
        guard.check_url(current)
        response = session.get(
            current, headers=request_headers, stream=stream, timeout=timeout, allow_redirects=False
        )
        if not response.is_redirect:
            return response
        location = response.headers["Location"]
        response.close()
        target = urljoin(current, location)
        if _origin(target) != _origin(current):
            request_headers = {
                k: v for k, v in request_headers.items() if k.lower() not in _CREDENTIAL_HEADERS
            }
        current = target
    raise requests.TooManyRedirects(f"more than {max_redirects} redirects from {redact_url(url)}")


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), parts.hostname, port


# -- the FileFetcher adapter -------------------------------------------------


class ResponseBody:
    """An upstream file body as FileFetcher reads it: chunks, declared length, close."""

    def __init__(self, response: requests.Response, url: str, chunk_size: int) -> None:
        self._response = response
        self._url = url
        self._chunk_size = chunk_size
        self.content_length = _declared_length(response)

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_content(self._chunk_size)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(
                f"upstream body for {redact_url(self._url)} failed: {type(exc).__name__}"
            ) from None

    def close(self) -> None:
        self._response.close()


def requests_opener(
    guard: NetGuard,
    *,
    timeout: float | tuple[float, float],
    session: requests.Session | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    headers: Mapping[str, str] | None = None,
) -> Callable[[str], ResponseBody]:
    """An ``open_upstream`` for FileFetcher: a guarded, streamed GET.

    Error messages carry the redacted URL and the error's type only:
    requests' own messages can quote the full URL, credentials included.
    """
    http = session if session is not None else guarded_session(guard)
    request_headers = {"Accept-Encoding": "identity", **(headers or {})}

    def open_upstream(url: str) -> ResponseBody:
        try:
            response = guarded_get(
                http, url, guard=guard, stream=True, timeout=timeout, headers=request_headers
            )
        except UpstreamError:
            raise
        except requests.RequestException as exc:
            raise UpstreamError(
                f"upstream unreachable for {redact_url(url)}: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            response.close()
            raise UpstreamError(
                f"upstream answered {response.status_code} for {redact_url(url)}",
                status=response.status_code,
            )
        return ResponseBody(response, url, chunk_size)

    return open_upstream


def _declared_length(response: requests.Response) -> int | None:
    """Content-Length, when it counts the bytes we will read (no content coding)."""
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return None
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None
