"""Client for the upstream index: Simple API pages and the project JSON API.

Every answer is bounded (timeouts, a size limit read while streaming) and
every URL goes through the network guard, because upstream pages are input
we do not control.  Conditional requests keep refreshes cheap.  Credentials
(a private index's) go only to the index's own origin, never where a
redirect points; a circuit breaker makes a down upstream fail fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from mirror import metrics
from mirror.simple.model import ProjectPage
from mirror.simple.parse import PageError, parse_project_list, parse_project_page
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.errors import ResponseTooLarge, UpstreamError
from mirror.upstream.netguard import (
    NetGuard,
    breaker_get,
    guarded_get,
    guarded_session,
    url_host_entry,
)

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)


@dataclass(frozen=True)
class Fetched:
    page: ProjectPage
    etag: str | None
    # The page as upstream sent it, with its type and the URL its links are relative to:
    # stored as sent, it is parsed again for a rebuild instead of being rendered anew.
    body: bytes
    content_type: str
    url: str


class NotModified:
    """Upstream confirmed that our stored copy is current."""


class NotFound:
    """Upstream does not have the project."""


NOT_MODIFIED = NotModified()
NOT_FOUND = NotFound()


_UPLOAD_TIME_KEYS = ("upload_time_iso_8601", "upload_time")


def file_upload_times(entry: dict[str, Any]) -> dict[str, Any]:
    """A JSON API object as parsed, a file entry cut down to its upload times.

    The upload times are all the mirror reads of a file entry (the pages give
    the rest, verified); a big project's entries held whole were 25 MiB of
    small objects (pydantic-core: 5 MiB cut down), made while its page was
    built, that kept their memory from going back when freed.
    """
    if "digests" in entry and "filename" in entry:
        return {key: entry[key] for key in _UPLOAD_TIME_KEYS if key in entry}
    return entry


class UpstreamClient:
    def __init__(
        self,
        simple_url: str,
        *,
        timeout: float,
        max_page_bytes: int,
        guard: NetGuard,
        json_api_url: str | None = None,
        auth: tuple[str, str] | None = None,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """``auth`` goes to the origin of each request's URL only (see ``guarded_get``)."""
        self.simple_url = simple_url if simple_url.endswith("/") else simple_url + "/"
        self.json_api_url = json_api_url or derive_json_api_url(self.simple_url)
        self.timeout = timeout
        self.max_page_bytes = max_page_bytes
        self.guard = guard
        self.session = session or guarded_session(guard)
        self.breaker = breaker
        self._auth = auth

    def project_url(self, name: str) -> str:
        return urljoin(self.simple_url, f"{name}/")

    def fetch_project(
        self, name: str, etag: str | None = None, *, timeout: float | None = None
    ) -> Fetched | NotModified | NotFound:
        """Fetch ``/simple/<name>/``; ``etag`` makes it a conditional request.

        ``timeout`` shortens the wait where a stale copy can answer instead.
        """
        url = self.project_url(name)
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        response = self._get(url, headers, timeout)
        try:
            if response.status_code == 304:
                return NOT_MODIFIED
            if response.status_code in (404, 410):
                return NOT_FOUND
            if response.status_code != 200:
                raise UpstreamError(
                    f"upstream answered {response.status_code} for {name}", status=response.status_code
                )
            body = self._read_bounded(response)
            content_type = response.headers.get("Content-Type", "")
            try:
                page = parse_project_page(body, content_type, response.url)
            except PageError as exc:
                raise UpstreamError(f"upstream page for {name} is unusable: {exc}") from None
            serial = _int_or_none(response.headers.get("X-PyPI-Last-Serial"))
            if serial is not None and page.last_serial is None:
                page = _with_serial(page, serial)
            return Fetched(page, response.headers.get("ETag"), body, content_type, response.url)
        finally:
            response.close()

    def fetch_project_list(self) -> list[str]:
        """Every project name the index lists (used for private indexes)."""
        response = self._get(self.simple_url, {"Accept": ACCEPT})
        try:
            if response.status_code != 200:
                raise UpstreamError(
                    f"upstream answered {response.status_code} for the project list",
                    status=response.status_code,
                )
            body = self._read_bounded(response)
            try:
                listing = parse_project_list(body, response.headers.get("Content-Type", ""))
            except PageError as exc:
                raise UpstreamError(f"upstream project list is unusable: {exc}") from None
            return list(listing.names)
        finally:
            response.close()

    def fetch_project_json(self, name: str) -> dict[str, Any] | None:
        """The project JSON API document (ownership, release times), or None if absent.

        Each file entry keeps only its upload times (``file_upload_times``).
        """
        response = self._get(urljoin(self.json_api_url, f"{name}/json"), {"Accept": "application/json"})
        try:
            if response.status_code in (404, 410):
                return None
            if response.status_code != 200:
                raise UpstreamError(
                    f"upstream JSON API answered {response.status_code} for {name}",
                    status=response.status_code,
                )
            try:
                data = json.loads(self._read_bounded(response), object_hook=file_upload_times)
            except ValueError:
                raise UpstreamError(f"upstream JSON API sent invalid JSON for {name}") from None
            if not isinstance(data, dict):
                raise UpstreamError(f"upstream JSON API sent a {type(data).__name__} for {name}")
            return data
        finally:
            response.close()

    def fetch_provenance(self, url: str) -> bytes | None:
        """A file's PEP 740 provenance document as published, or None when upstream has none.

        Bounded like a page; the network guard checks the URL like any other.
        """
        response = self._get(url, {"Accept": "application/vnd.pypi.integrity.v1+json, application/json"})
        try:
            if response.status_code in (404, 410):
                return None
            if response.status_code != 200:
                raise UpstreamError(f"upstream answered {response.status_code} for a provenance file",
                                    status=response.status_code)
            return self._read_bounded(response)
        finally:
            response.close()

    def _get(self, url: str, headers: dict[str, str], timeout: float | None = None) -> requests.Response:
        kind = "json" if url.endswith("/json") else "page"
        started = time.perf_counter()
        try:
            response = breaker_get(
                self.breaker,
                url,
                lambda: guarded_get(
                    self.session,
                    url,
                    stream=True,
                    timeout=timeout or self.timeout,
                    headers=headers,
                    guard=self.guard,
                    auth=self._auth,
                ),
            )
        except UpstreamError as exc:
            metrics.observe_upstream(kind, started, type(exc).__name__)
            raise
        status = response.status_code
        metrics.observe_upstream(kind, started, f"status {status}" if status >= 500 else None)
        return response

    def _read_bounded(self, response: requests.Response) -> bytes:
        declared = _int_or_none(response.headers.get("Content-Length"))
        if declared is not None and declared > self.max_page_bytes:
            raise ResponseTooLarge(f"upstream page is too large ({declared} bytes)")
        chunks = []
        total = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > self.max_page_bytes:
                    raise ResponseTooLarge(f"upstream page exceeds {self.max_page_bytes} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise UpstreamError(f"upstream page read failed: {type(exc).__name__}") from None
        return b"".join(chunks)


def derive_json_api_url(simple_url: str) -> str:
    """``https://host/simple/`` -> ``https://host/pypi/``, the JSON API's home."""
    parts = urlsplit(simple_url)
    path = parts.path.rstrip("/")
    if path.endswith("/simple"):
        path = path[: -len("/simple")]
    return f"{parts.scheme}://{parts.netloc}{path}/pypi/"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _with_serial(page: ProjectPage, serial: int) -> ProjectPage:
    return replace(page, last_serial=serial)


def private_index_client(
    url: str,
    *,
    username: str,
    password: str,
    timeout: float,
    max_page_bytes: int,
    ca_bundle: str | bool,
    breaker: CircuitBreaker | None = None,
) -> UpstreamClient:
    """A client for the private index at ``url``, its credentials kept to that index.

    The index usually lives on a private address, so the address check is
    lifted and its host and port are pinned instead, as for a local public
    upstream: a redirect to any other host or port is refused before a byte
    is sent, and the credentials are scoped to the index's origin besides.
    An empty ``username`` means no credentials.
    """
    guard = NetGuard({url_host_entry(url)}, allow_private=True)
    session = guarded_session(guard)
    session.verify = ca_bundle
    return UpstreamClient(
        url,
        timeout=timeout,
        max_page_bytes=max_page_bytes,
        guard=guard,
        auth=(username, password) if username else None,
        session=session,
        breaker=breaker,
    )
