"""The network guard: every URL the mirror fetches is checked before it is followed.

Upstream pages are input we do not control: a hostile page can point a
file link (or a redirect) at ``file:``, at the cloud metadata address, or at
a service inside our network.  So a URL is followed only if its scheme is
http(s), its host is one the configured upstream is known to use, and every
address the host resolves to is public.  The address is checked twice:
once by name before the request, and again on the socket that actually
connected, which defeats DNS answers that change between the two.  When the
upstream itself is on a private address the address check cannot help, so
the guard pins host *and port* there: another service on the upstream's own
host is as off-limits as any other private address.

Credentials (``auth``) are sent only to the origin of the URL a request
started at, never to a host or port a redirect leads to.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Callable, Iterable, Iterator, Mapping
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from mirror import __version__
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.errors import BlockedURL, RefusedEncoding, UpstreamError, UpstreamUnreachable

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


Resolver = Callable[[str, int], Iterable[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UpstreamUnreachable(f"cannot resolve {host}: {exc}") from None
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
    An entry ``host:port`` (``[v6]:port``) allows that one port of the host;
    a bare ``host`` allows any port of it.  ``allow_private`` lifts the
    address check, for an upstream that is itself on a private or loopback
    address (tests, an internal index): pin its port then (see
    ``upstream_guard``).
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str] | None,
        allow_private: bool = False,
        *,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._lock = threading.Lock()
        self._hosts: frozenset[tuple[str, int | None]] | None = (
            None if allowed_hosts is None else frozenset(host_entry(h) for h in allowed_hosts)
        )
        self.allow_private = allow_private
        self._resolve = resolve

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        """The allowed entries, ``host`` or ``host:port``; None when any host may be fetched."""
        if self._hosts is None:
            return None
        return frozenset(_entry_text(host, port) for host, port in self._hosts)

    def allow_hosts(self, hosts: Iterable[str]) -> None:
        """Add entries, ``host`` or ``host:port`` (say, a file host newly seen on a page)."""
        with self._lock:
            if self._hosts is not None:
                self._hosts = self._hosts | {host_entry(h) for h in hosts}

    def check_url(self, url: str) -> None:
        """Raise BlockedURL unless ``url`` may be fetched (UpstreamError if unresolvable)."""
        scheme, host, port = _parse(url)
        hosts = self._hosts
        if hosts is not None and (host, None) not in hosts and (host, port) not in hosts:
            if any(allowed == host for allowed, _ in hosts):
                raise BlockedURL(
                    f"port {port} of {host!r} is not an allowed upstream host and port: "
                    f"{redact_url(url)}"
                )
            raise BlockedURL(f"host {host!r} is not an allowed upstream host: {redact_url(url)}")
        if self.allow_private:
            return
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = list(self._resolve(host, port))
        if not addresses:
            raise UpstreamUnreachable(f"{host} resolves to no address")
        for address in addresses:
            if not is_public_address(address):
                raise BlockedURL(
                    f"host {host!r} resolves to non-public address {address}: {redact_url(url)}"
                )

    def address_allowed(self, address: str) -> bool:
        """Whether a connection to ``address`` may be used."""
        return self.allow_private or is_public_address(address)


def host_entry(entry: str) -> tuple[str, int | None]:
    """``host`` -> (host, None); ``host:port`` or ``[v6]:port`` -> (host, port).

    Raises ValueError for a port that is not a number from 1 to 65535, so a
    typo in a configured host stops the mirror at start.
    """
    text = entry.strip().lower()
    port_text = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"malformed host entry {entry!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a name, or a bare IPv6 address
    if not port_text:
        return _normal_host(host), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"host entry {entry!r} has an invalid port")
    return _normal_host(host), int(port_text)


def url_host_entry(url: str) -> str:
    """The ``host:port`` entry that allows exactly ``url``'s host and port (default made explicit)."""
    _, host, port = _parse(url)
    return _entry_text(host, port)


def _entry_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def is_local_url(url: str) -> bool:
    """True when ``url``'s host lives on a loopback or private address."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_loopback or a.is_private for a in addresses)


def upstream_guard(upstream_url: str, file_hosts: Iterable[str] = ()) -> NetGuard:
    """The guard for an index at ``upstream_url`` whose pages may link to ``file_hosts``.

    A public upstream gets the address check (any public host).  A local or
    private one lifts the address check, so the guard pins its host and
    port instead, plus the configured file hosts: else a hostile page could
    send us to any other private address, or to another port of its own host.
    """
    if not is_local_url(upstream_url):
        return NetGuard(None)
    return NetGuard({url_host_entry(upstream_url), *file_hosts}, allow_private=True)


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
    auth: tuple[str, str] | None = None,
) -> requests.Response:
    """GET ``url``, following redirects by hand so every hop passes ``guard``.

    The session's http/https transports are replaced by guarded ones on
    first use (so the connect-time check applies to any session).
    ``auth`` (basic credentials; else those in ``url``'s userinfo) goes only
    to hops on ``url``'s own origin; it and credential headers are dropped
    once a redirect leaves that origin, and stay dropped.  A session's own
    ``auth`` and a redirect target's userinfo are never applied: credentials
    are scoped here or not sent.
    Raises BlockedURL, UpstreamError (unresolvable host),
    requests.TooManyRedirects, or requests' own errors.
    """
    _ensure_guarded(session, guard)
    request_headers = dict(headers or {})
    home = origin(url)
    if auth is None:
        auth = _userinfo(url)
    hop_auth: tuple[str, str] | Callable[..., object] = auth if auth is not None else _no_auth
    current = url
    for _ in range(max_redirects + 1):
        guard.check_url(current)
        response = session.get(
            current,
            headers=request_headers,
            stream=stream,
            timeout=timeout,
            allow_redirects=False,
            auth=hop_auth,
        )
        if not response.is_redirect:
            return response
        location = response.headers["Location"]
        response.close()
        target = urljoin(current, location)
        if origin(target) != home:
            hop_auth = _no_auth
            request_headers = {
                k: v for k, v in request_headers.items() if k.lower() not in _CREDENTIAL_HEADERS
            }
        current = target
    raise requests.TooManyRedirects(f"more than {max_redirects} redirects from {redact_url(url)}")


def _userinfo(url: str) -> tuple[str, str] | None:
    """Credentials written into ``url`` itself (``https://user:token@host/``), if any."""
    username, password = requests.utils.get_auth_from_url(url)
    return (username, password) if username or password else None


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth hook that adds nothing, so a session's own ``auth`` is never applied."""
    return request


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (default port made explicit): what credentials
    are scoped to and what the circuit breaker counts failures by."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "invalid:"  # the guard refuses such a URL before anything is sent
    scheme = parts.scheme.lower()
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


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
    breaker: CircuitBreaker | None = None,
) -> Callable[[str], ResponseBody]:
    """An ``open_upstream`` for FileFetcher: a guarded, streamed GET.

    Files are asked for, and accepted, as identity only: a content coding
    would be decoded while read, so a small gzip body could fill the disk
    before any size or hash check saw a byte.  With a ``breaker``, an
    origin that keeps failing to connect fails fast (CircuitOpen).
    Error messages carry the redacted URL and the error's type only:
    requests' own messages can quote the full URL, credentials included.
    """
    http = session if session is not None else guarded_session(guard)
    request_headers = {**(headers or {}), "Accept-Encoding": "identity"}

    def open_upstream(url: str) -> ResponseBody:
        response = breaker_get(
            breaker, url, lambda: guarded_get(
                http, url, guard=guard, stream=True, timeout=timeout, headers=request_headers
            )
        )
        if response.status_code != 200:
            response.close()
            raise UpstreamError(
                f"upstream answered {response.status_code} for {redact_url(url)}",
                status=response.status_code,
            )
        coding = content_coding(response)
        if coding != "identity":
            response.close()
            raise RefusedEncoding(
                f"upstream sent {redact_url(url)} with Content-Encoding {coding[:40]!r};"
                " files are accepted unencoded only"
            )
        return ResponseBody(response, url, chunk_size)

    return open_upstream


def breaker_get(
    breaker: CircuitBreaker | None, url: str, get: Callable[[], requests.Response]
) -> requests.Response:
    """Run ``get`` for ``url`` under ``breaker``; every failure becomes an UpstreamError.

    A failure to connect (refused, unresolvable, timed out before an answer)
    counts against ``url``'s origin; any HTTP answer clears it; a URL the
    guard refused says nothing about whether upstream is up.  The one place
    that tells these apart, for pages and files alike.
    """
    key = origin(url)
    if breaker is not None:
        breaker.before(key)
    started = time.monotonic()
    failed: bool | None = None
    try:
        response = get()
        failed = False
        return response
    except BlockedURL:
        raise
    except UpstreamUnreachable:
        failed = True
        raise
    except (requests.ConnectionError, requests.Timeout) as exc:
        failed = True
        raise UpstreamUnreachable(
            f"upstream unreachable for {redact_url(url)}: {type(exc).__name__}"
            f" after {time.monotonic() - started:.1f} s"
        ) from None
    except requests.RequestException as exc:  # too many redirects, an invalid answer
        raise UpstreamError(
            f"upstream request for {redact_url(url)} failed: {type(exc).__name__}"
        ) from None
    finally:
        if breaker is not None:
            breaker.after(key, failed=failed)


def content_coding(response: requests.Response) -> str:
    """The response's content coding, ``identity`` when none is declared."""
    return response.headers.get("Content-Encoding", "").strip().lower() or "identity"


def _declared_length(response: requests.Response) -> int | None:
    """Content-Length, when it counts the bytes we will read (no content coding)."""
    if content_coding(response) != "identity":
        return None
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None
