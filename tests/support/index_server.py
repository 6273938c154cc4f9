"""A real package index on 127.0.0.1 that tests and benchmarks talk HTTP to.

The mirror is a proxy, so its tests need an upstream that behaves like the
public index: the simple API in both PEP 691 JSON and PEP 503 HTML with the
later additions (PEP 592 yanking, PEP 658/714 metadata files, PEP 700
versions/size/upload-time, PEP 708 tracks, PEP 740 provenance, PEP 792
project status), the project JSON API, a download-statistics endpoint, serials
and ETags.  It also has to misbehave on demand -- fail, hang, drip, truncate,
lie about hashes, send hostile pages -- because handling an unreliable or
malicious upstream is the mirror's job.

Everything is standard library plus ``packaging``: the server is a
``ThreadingHTTPServer`` in a background thread, so a slow response never
blocks another, and state changes made by a test are visible on the next
request.

Run standalone for benchmarks (from the repository root)::

    python -m tests.support.index_server --port 0 --dir DIR

It serves every wheel and sdist in DIR and prints its base URL on the first
line of stdout.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import html
import json
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .dists import parse_dist_filename, sdist_metadata, wheel_metadata

__all__ = [
    "API_VERSION",
    "FAULT_KINDS",
    "HTML_LEGACY",
    "HTML_V1",
    "JSON_V1",
    "Fault",
    "IndexServer",
    "RegisteredFile",
    "UpstreamRequest",
    "choose_media_type",
    "main",
]

API_VERSION = "1.4"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
HTML_LEGACY = "text/html"
_LATEST_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}
_CONTENT_TYPES = {JSON_V1: JSON_V1, HTML_V1: HTML_V1, HTML_LEGACY: "text/html; charset=utf-8"}

PROJECT_STATUSES = ("active", "archived", "quarantined", "deprecated")
ROLES = ("Owner", "Maintainer")
_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
_SIDE_FILE_SUFFIXES = (".metadata", ".provenance")
_CHUNK = 64 * 1024
_MIB = 1 << 20

# Hostile links a compromised or spoofed upstream might list.  ``{filename}``
# is replaced by a plausible distribution file name for the project.
DEFAULT_HOSTILE_URLS = (
    "http://10.0.0.1/{filename}",
    "http://169.254.169.254/latest/meta-data/{filename}",
    "http://127.0.0.1:1/{filename}",
    "http://[::1]/{filename}",
    "http://files.attacker.invalid/packages/{filename}",
    "//files.attacker.invalid/packages/{filename}",
    "file:///etc/passwd#{filename}",
    "javascript:alert(document.domain)",
    "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
)

# kind -> (required parameters, optional parameters with defaults)
FAULT_KINDS: dict[str, tuple[frozenset[str], dict[str, Any]]] = {
    "status": (frozenset(), {"status": 503, "body": b"", "headers": {}}),
    "hang": (frozenset({"seconds"}), {}),
    "drip": (frozenset({"bytes_per_second"}), {}),
    "truncate": (frozenset({"after"}), {}),
    "corrupt": (frozenset(), {"data": None}),
    "huge": (frozenset({"size_mib"}), {"declare_length": True}),
    "malformed": (frozenset(), {}),
    "wrong_content_type": (frozenset(), {"content_type": "text/plain"}),
    "hostile_links": (frozenset(), {"urls": DEFAULT_HOSTILE_URLS}),
    "disconnect": (frozenset(), {}),
    "redirect": (frozenset({"location"}), {"status": 302}),
}

_UNSET: Any = object()


# -- public records ------------------------------------------------------------


class UpstreamRequest(NamedTuple):
    """One request as the server received it; ``path`` keeps the query string."""

    method: str
    path: str
    headers: Message


@dataclass(frozen=True)
class RegisteredFile:
    """What the index advertises for one file.  URL fields are paths on the
    server; ``IndexServer.absolute`` turns them into URLs."""

    filename: str
    project: NormalizedName
    version: str
    packagetype: str
    url_path: str
    sha256: str
    size: int
    upload_time: datetime
    yanked: bool | str
    requires_python: str | None
    metadata_url_path: str | None
    metadata_sha256: str | None
    provenance_url_path: str | None


@dataclass(eq=False)
class Fault:
    """An active misbehaviour.  ``hits`` counts the requests it answered.

    Usable as a context manager: leaving the block clears the fault.
    """

    target: str
    kind: str
    params: dict[str, Any]
    times: int | None = None
    hits: int = 0
    _server: IndexServer | None = field(default=None, repr=False)
    _project: NormalizedName | None = field(default=None, repr=False)

    def clear(self) -> None:
        if self._server is not None:
            self._server._remove_fault(self)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clear()


# -- internal state ------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    filename: str
    project: NormalizedName
    version: str
    packagetype: str
    python_version: str
    source: Path
    url_key: str  # fixed at registration so the URL survives byte changes
    sha256: str  # advertised
    md5: str
    blake2b_256: str
    size: int
    upload_time: datetime
    yanked: bool | str
    requires_python: str | None
    dist_metadata: Mapping[str, Any]  # parsed core metadata, for the JSON API
    served_metadata: bytes | None  # the PEP 658 file, None when not advertised
    provenance: bytes | None
    replacement: bytes | None = None  # served instead of ``source`` when set
    served_sha256: str | None = None

    @property
    def url_path(self) -> str:
        return f"/files/{self.url_key}/{quote(self.filename)}"

    @property
    def metadata_sha256(self) -> str | None:
        if self.served_metadata is None:
            return None
        return hashlib.sha256(self.served_metadata).hexdigest()

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)


@dataclass
class _Project:
    name: str
    canonical: NormalizedName
    serial: int = 0
    files: dict[str, _File] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    organization: str | None = None
    status: str | None = None
    status_reason: str | None = None
    tracks: list[str] = field(default_factory=list)
    alternate_locations: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> _Project:
        """A copy safe to render outside the lock (files are immutable)."""
        return dataclasses.replace(
            self,
            files=dict(self.files),
            owners=dict(self.owners),
            tracks=list(self.tracks),
            alternate_locations=list(self.alternate_locations),
            info=dict(self.info),
        )

    def listed_files(self) -> list[_File]:
        """Files in listing order; a quarantined project lists none (PEP 792)."""
        if self.status == "quarantined":
            return []
        return sorted(self.files.values(), key=lambda f: (f.parsed_version, f.filename))

    def versions(self) -> list[str]:
        return sorted({f.version for f in self.files.values()}, key=Version)


@dataclass(frozen=True)
class _Route:
    kind: str  # root | project | file | json_api | downloads | redirect | unknown
    name: str | None = None  # project name as spelled in the URL
    project: NormalizedName | None = None
    filename: str | None = None  # requested file name, with any side-file suffix
    dist: str | None = None  # the distribution the requested file belongs to
    variant: str | None = None  # dist | metadata | provenance (files); slash | no-slash (projects)
    version: str | None = None
    location: str | None = None


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | Path | Iterable[bytes] = b""  # a Path is streamed from disk
    length: int | None = 0  # None: no Content-Length, the body ends when the connection closes
    etag: str | None = None


# -- content negotiation ---------------------------------------------------------


def choose_media_type(accept: str | None, offers: Sequence[str] = (JSON_V1, HTML_V1, HTML_LEGACY)) -> str | None:
    """Pick the response format for an Accept header, or None for 406.

    Higher q wins, then the more specific match.  Among explicit matches the
    JSON format is preferred; a match through a wildcard prefers HTML, as the
    public index does, so a client sending ``*/*`` keeps seeing what it
    always saw.
    """
    if accept is None or not accept.strip():
        return HTML_LEGACY if HTML_LEGACY in offers else offers[0]
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        ranges.append((_LATEST_ALIASES.get(media, media), quality))

    best: tuple[float, int, int] | None = None
    chosen = None
    for position, offer in enumerate(offers):
        major = offer.split("/")[0]
        specificity, quality = -1, 0.0
        for media, q in ranges:
            rank = 2 if media == offer else 1 if media == f"{major}/*" else 0 if media == "*/*" else -1
            if rank > specificity:
                specificity, quality = rank, q
        if specificity < 0 or quality <= 0:
            continue
        preference = -position if specificity == 2 else -_WILDCARD_ORDER.index(offer)
        key = (quality, specificity, preference)
        if best is None or key > best:
            best, chosen = key, offer
    return chosen


_WILDCARD_ORDER = (HTML_LEGACY, HTML_V1, JSON_V1)


# -- rendering (pure functions of a project snapshot) ------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _yank_reason(yanked: bool | str) -> str | None:
    return yanked if isinstance(yanked, str) and yanked else None


def render_root_json(projects: Sequence[tuple[str, int]], last_serial: int) -> bytes:
    document = {
        "meta": {"api-version": API_VERSION, "_last-serial": last_serial},
        "projects": [{"name": name, "_last-serial": serial} for name, serial in projects],
    }
    return json.dumps(document).encode()


def render_root_html(projects: Sequence[tuple[str, int]], last_serial: int) -> bytes:
    anchors = "\n".join(
        f'    <a href="{html.escape(canonicalize_name(name))}/">{html.escape(name)}</a>' for name, _ in projects
    )
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{anchors}\n  </body>\n</html>\n<!--SERIAL {last_serial}-->\n"
    ).encode()


def render_project_json(project: _Project, base: str) -> bytes:
    files = []
    for f in project.listed_files():
        core = {"sha256": f.metadata_sha256} if f.served_metadata is not None else False
        files.append(
            {
                "filename": f.filename,
                "url": base + f.url_path,
                "hashes": {"sha256": f.sha256},
                "requires-python": f.requires_python,
                "yanked": f.yanked,
                "size": f.size,
                "upload-time": _iso(f.upload_time),
                "core-metadata": core,
                # Not the legacy "dist-info-metadata": PEP 714 asks servers not
                # to send it in JSON, because some pip releases crash on it.
                # This misspelling is what the public index sends instead.
                "data-dist-info-metadata": core,
                "provenance": base + f.url_path + ".provenance" if f.provenance is not None else None,
            }
        )
    document: dict[str, Any] = {
        "meta": {"api-version": API_VERSION, "_last-serial": project.serial},
        "name": project.canonical,
        "versions": project.versions(),
        "files": files,
    }
    if project.status is not None:
        document["project-status"] = {"status": project.status}
        if project.status_reason is not None:
            document["project-status"]["reason"] = project.status_reason
    if project.tracks:
        document["tracks"] = project.tracks
    if project.alternate_locations:
        document["alternate-locations"] = project.alternate_locations
    return json.dumps(document).encode()


def render_project_html(project: _Project, base: str) -> bytes:
    esc = html.escape
    head = [f'    <meta name="pypi:repository-version" content="{API_VERSION}">']
    if project.status is not None:
        head.append(f'    <meta name="pypi:project-status" content="{esc(project.status)}">')
        if project.status_reason is not None:
            head.append(f'    <meta name="pypi:project-status-reason" content="{esc(project.status_reason)}">')
    head += [f'    <meta name="pypi:tracks" content="{esc(url)}">' for url in project.tracks]
    head += [f'    <meta name="pypi:alternate-locations" content="{esc(url)}">' for url in project.alternate_locations]
    anchors = []
    for f in project.listed_files():
        attrs = [f'href="{esc(base + f.url_path)}#sha256={f.sha256}"']
        if f.requires_python is not None:
            attrs.append(f'data-requires-python="{esc(f.requires_python)}"')
        if f.yanked is not False:
            attrs.append(f'data-yanked="{esc(_yank_reason(f.yanked) or "")}"')
        if f.served_metadata is not None:
            attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
            attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
        if f.provenance is not None:
            attrs.append(f'data-provenance="{esc(base + f.url_path)}.provenance"')
        anchors.append(f"    <a {' '.join(attrs)}>{esc(f.filename)}</a><br />")
    title = f"Links for {esc(project.canonical)}"
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        + "\n".join(head)
        + f"\n    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
        + "\n".join(anchors)
        + f"\n  </body>\n</html>\n<!--SERIAL {project.serial}-->\n"
    ).encode()


def _json_api_file(f: _File, base: str) -> dict[str, Any]:
    return {
        "comment_text": "",
        "digests": {"blake2b_256": f.blake2b_256, "md5": f.md5, "sha256": f.sha256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": f.md5,
        "packagetype": f.packagetype,
        "python_version": f.python_version,
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": f.upload_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": _iso(f.upload_time),
        "url": base + f.url_path,
        "yanked": f.yanked is not False,
        "yanked_reason": _yank_reason(f.yanked),
    }


def _latest_version(project: _Project) -> str | None:
    """The release the JSON API describes: newest final release that is not
    wholly yanked, else the newest of any kind."""
    by_version: dict[str, list[_File]] = {}
    for f in project.files.values():
        by_version.setdefault(f.version, []).append(f)
    if not by_version:
        return None
    preferred = [
        v
        for v, files in by_version.items()
        if not Version(v).is_prerelease and any(f.yanked is False for f in files)
    ]
    return max(preferred or by_version, key=Version)


def _json_api_info(project: _Project, version: str | None, base: str) -> dict[str, Any]:
    files = [f for f in project.files.values() if f.version == version]
    # Prefer a wheel's metadata, as the public index does for the release page.
    files.sort(key=lambda f: f.packagetype != "bdist_wheel")
    raw: Mapping[str, Any] = files[0].dist_metadata if files else {}
    yanked = bool(files) and all(f.yanked is not False for f in files)
    keywords = raw.get("keywords")
    info: dict[str, Any] = {
        "author": raw.get("author"),
        "author_email": raw.get("author_email"),
        "bugtrack_url": None,
        "classifiers": list(raw.get("classifiers", [])),
        "description": raw.get("description", ""),
        "description_content_type": raw.get("description_content_type"),
        "docs_url": None,
        "download_url": raw.get("download_url"),
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "dynamic": raw.get("dynamic"),
        "home_page": raw.get("home_page"),
        "keywords": ",".join(keywords) if keywords else None,
        "license": raw.get("license"),
        "license_expression": raw.get("license_expression"),
        "license_files": raw.get("license_files"),
        "maintainer": raw.get("maintainer"),
        "maintainer_email": raw.get("maintainer_email"),
        "name": raw.get("name", project.name),
        "package_url": f"{base}/project/{project.canonical}/",
        "platform": None,
        "project_url": f"{base}/project/{project.canonical}/",
        "project_urls": raw.get("project_urls"),
        "provides_extra": raw.get("provides_extra"),
        "release_url": f"{base}/project/{project.canonical}/{version}/",
        "requires_dist": raw.get("requires_dist"),
        "requires_python": raw.get("requires_python"),
        "summary": raw.get("summary"),
        "version": version,
        "yanked": yanked,
        "yanked_reason": next((_yank_reason(f.yanked) for f in files if _yank_reason(f.yanked)), None),
    }
    info.update(project.info)
    return info


def render_json_api(project: _Project, base: str, version: str | None = None) -> bytes:
    """The project JSON API document; with ``version``, the per-release one."""
    chosen = version if version is not None else _latest_version(project)
    listed = project.listed_files()
    document: dict[str, Any] = {
        "info": _json_api_info(project, chosen, base),
        "last_serial": project.serial,
    }
    if version is None:
        releases: dict[str, list[dict[str, Any]]] = {v: [] for v in project.versions()}
        for f in listed:
            releases[f.version].append(_json_api_file(f, base))
        document["releases"] = releases
    document["urls"] = [_json_api_file(f, base) for f in listed if f.version == chosen]
    document["vulnerabilities"] = []
    document["ownership"] = {
        "organization": project.organization,
        "roles": [{"role": role, "user": user} for user, role in project.owners.items()],
    }
    return json.dumps(document).encode()


def _synthetic_provenance(filename: str, sha256: str, project: str) -> dict[str, Any]:
    """A provenance object with the PEP 740 shape.  The signature is not real:
    tests use it to check that provenance is relayed and noticed, not verified."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    }
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {
                    "kind": "GitHub",
                    "claims": {},
                    "repository": f"example-org/{project}",
                    "workflow": "release.yml",
                    "environment": None,
                },
                "attestations": [
                    {
                        "version": 1,
                        "verification_material": {
                            "certificate": b64(b"test certificate for " + filename.encode()),
                            "transparency_entries": [],
                        },
                        "envelope": {
                            "statement": b64(json.dumps(statement).encode()),
                            "signature": b64(b"not a real signature"),
                        },
                    }
                ],
            }
        ],
    }


# -- HTTP plumbing ---------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of the real index expect
    server_version = "IndexGuardTestIndex/1.0"
    timeout = 30  # idle keep-alive connections give up eventually
    # Headers and body go out in separate writes; with Nagle's algorithm the
    # body then waits for a delayed ACK, adding ~40 ms to every keep-alive
    # request.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.index._handle(self, "GET")

    def do_HEAD(self) -> None:
        self.server.index._handle(self, "HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        """Tests read ``IndexServer.requests``; stderr noise helps nobody."""


class _HTTPServer(ThreadingHTTPServer):
    """Tracks connections and handler threads so ``stop`` can end them all."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrency tests open many connections at once

    def __init__(self, address: tuple[str, int], index: IndexServer) -> None:
        self.index = index
        self._live_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True, name="test-index-handler"
        )
        with self._live_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def abort_all(self, timeout: float) -> None:
        with self._live_lock:
            connections, threads = list(self._connections), list(self._handler_threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):  # disconnects and timeouts are the client's business
            self.index._record_error(traceback.format_exc())


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _canonical_or_none(name: str) -> NormalizedName | None:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        return None


def _canonical(name: str) -> NormalizedName:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName as exc:
        raise ValueError(f"invalid project name {name!r}: {exc}") from exc


def _digests(path: Path) -> tuple[str, str, str, int]:
    sha256, md5, blake2b = hashlib.sha256(), hashlib.md5(), hashlib.blake2b(digest_size=32)
    size = 0
    for chunk in _file_chunks(path):
        sha256.update(chunk)
        md5.update(chunk)
        blake2b.update(chunk)
        size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), blake2b.hexdigest(), size


def _parse_metadata(data: bytes | None) -> Mapping[str, Any]:
    """Leniently parsed core metadata; broken metadata just yields less."""
    if not data:
        return {}
    try:
        raw, _unparsed = parse_email(data)
    except Exception:  # a hostile file must not break registration
        return {}
    return dict(raw)


def _python_tag(filename: str, packagetype: str) -> str:
    if packagetype != "bdist_wheel":
        return "source"
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return "py3"
    return ".".join(sorted({tag.interpreter for tag in tags}))


# -- the server ------------------------------------------------------------------


class IndexServer:
    """A package index on 127.0.0.1 (ephemeral port) whose contents and
    failures tests control while it runs.  All state methods are thread-safe.

    ``formats`` limits the simple API to ``"json"`` and/or ``"html"``, to play
    an older upstream.  ``relative_urls`` makes pages link files by path
    instead of by absolute URL.  ``record_requests=False`` keeps no request
    log, for long benchmark runs.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        formats: Sequence[str] = ("json", "html"),
        relative_urls: bool = False,
        record_requests: bool = True,
    ) -> None:
        unknown = set(formats) - {"json", "html"}
        if unknown or not formats:
            raise ValueError(f"formats must be a non-empty subset of ('json', 'html'), got {formats!r}")
        self._offers = tuple(
            media
            for media, wanted in ((JSON_V1, "json"), (HTML_V1, "html"), (HTML_LEGACY, "html"))
            if wanted in formats
        )
        self._host = host
        self._port = port
        self._relative_urls = relative_urls
        self._record_requests = record_requests
        self._lock = threading.RLock()
        self._projects: dict[NormalizedName, _Project] = {}
        self._files: dict[str, _File] = {}
        self._downloads: dict[NormalizedName, dict[str, int]] = {}
        self._faults: list[Fault] = []
        self._requests: list[UpstreamRequest] = []
        self._errors: list[str] = []
        self._serial = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> IndexServer:
        """Start serving.  After a ``stop`` it comes back on the same port, so a
        test can take the upstream down and bring it back."""
        with self._lock:
            if self._httpd is not None:
                raise RuntimeError("the index server is already running")
            self._stopping.clear()
            httpd = _HTTPServer((self._host, self._port), self)
            self._port = httpd.server_address[1]
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True, name="test-index"
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and end every connection, including hanging and
        dripping responses.  Safe to call twice."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.abort_all(timeout)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the index server has no port until start() is called")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT/``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/"

    @property
    def simple_url(self) -> str:
        return self.url + "simple/"

    def absolute(self, path: str) -> str:
        """Turn a server path (as in ``RegisteredFile``) into a URL."""
        return self.url.rstrip("/") + path

    # -- index contents

    def add_file(
        self,
        project: str,
        path: str | Path,
        *,
        version: str | None = None,
        upload_time: datetime | None = None,
        yanked: bool | str = False,
        requires_python: str | None = None,
        metadata: bool | bytes = True,
        provenance: bool | Mapping[str, Any] = False,
        check_name: bool = True,
    ) -> RegisteredFile:
        """Publish a distribution file under ``project``.

        The file is hashed now and read from ``path`` on every download, so
        leave it alone afterwards; change published bytes with
        ``replace_file_bytes``.  ``requires_python`` defaults to the file's own
        metadata.  ``metadata=True`` serves a wheel's METADATA as its PEP 658
        file; ``bytes`` serves those bytes instead (any file type), to play an
        index whose metadata file disagrees with the distribution.
        ``provenance=True`` serves a synthetic PEP 740 provenance object, a
        mapping serves that object.  ``check_name=False`` allows a file whose
        name belongs to another project, to play a spoofing upstream.
        """
        canonical = _canonical(project)
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no distribution file at {source}")
        filename = source.name
        version_text, packagetype = self._identify(filename, canonical, version, check_name)
        when = upload_time if upload_time is not None else datetime.now(timezone.utc)
        if when.tzinfo is None:
            raise ValueError("upload_time must be timezone-aware (for example datetime.now(timezone.utc))")
        sha256, md5, blake2b, size = _digests(source)
        contained = self._contained_metadata(source, packagetype)
        served = self._served_metadata(metadata, contained, packagetype)
        raw = _parse_metadata(contained)
        if requires_python is None:
            requires_python = raw.get("requires_python")
        elif not isinstance(requires_python, str):
            raise TypeError("requires_python must be a str or None")
        else:
            try:
                SpecifierSet(requires_python)
            except InvalidSpecifier as exc:
                raise ValueError(f"invalid requires_python {requires_python!r}: {exc}") from exc
        entry = _File(
            filename=filename,
            project=canonical,
            version=version_text,
            packagetype=packagetype,
            python_version=_python_tag(filename, packagetype),
            source=source,
            url_key=sha256[:16],
            sha256=sha256,
            md5=md5,
            blake2b_256=blake2b,
            size=size,
            upload_time=when,
            yanked=self._check_yanked(yanked),
            requires_python=requires_python,
            dist_metadata=raw,
            served_metadata=served,
            provenance=self._provenance_bytes(provenance, filename, sha256, canonical),
        )
        with self._lock:
            if filename in self._files:
                raise ValueError(f"{filename} is already published; use replace_file_bytes to change it")
            target = self._projects.setdefault(canonical, _Project(name=project, canonical=canonical))
            target.files[filename] = entry
            self._files[filename] = entry
            self._bump(target)
        return self._public(entry)

    def add_directory(self, directory: str | Path) -> list[RegisteredFile]:
        """Publish every wheel and sdist in ``directory``, grouped by project;
        upload times come from the files' modification times."""
        root = Path(directory)
        if not root.is_dir():
            raise NotADirectoryError(f"not a directory: {root}")
        published = []
        for path in sorted(root.iterdir()):
            if not path.is_file():
                continue
            try:
                name, _version, _kind = parse_dist_filename(path.name)
            except ValueError:
                continue
            mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            published.append(self.add_file(name, path, upload_time=mtime))
        return published

    def file(self, filename: str) -> RegisteredFile:
        with self._lock:
            return self._public(self._lookup_file(filename))

    def file_url(self, filename: str) -> str:
        return self.absolute(self.file(filename).url_path)

    def set_yanked(self, filename: str, yanked: bool | str) -> None:
        """Yank (``True`` or a reason) or un-yank (``False``) a file (PEP 592)."""
        value = self._check_yanked(yanked)
        with self._lock:
            entry = self._lookup_file(filename)
            self._store(dataclasses.replace(entry, yanked=value))

    def remove_file(self, filename: str) -> None:
        with self._lock:
            entry = self._lookup_file(filename)
            del self._files[filename]
            project = self._projects[entry.project]
            del project.files[filename]
            self._bump(project)

    def remove_project(self, project: str) -> None:
        """Delete a project and its files; its pages and files become 404."""
        with self._lock:
            entry = self._lookup_project(project)
            for filename in entry.files:
                del self._files[filename]
            del self._projects[entry.canonical]
            self._serial += 1

    def replace_file_bytes(self, filename: str, new_bytes: bytes, *, update_listing: bool = False) -> RegisteredFile:
        """Change what a published file's URL serves, as a compromised or
        careless upstream might.  By default the pages keep advertising the old
        hash and size; ``update_listing=True`` advertises the new ones (and new
        metadata for a wheel) and bumps the serial."""
        if not isinstance(new_bytes, (bytes, bytearray)):
            raise TypeError("new_bytes must be bytes")
        data = bytes(new_bytes)
        served_sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            entry = self._lookup_file(filename)
            changed = dataclasses.replace(entry, replacement=data, served_sha256=served_sha)
            if update_listing:
                contained = self._contained_metadata_from_bytes(data, entry.packagetype, filename)
                changed = dataclasses.replace(
                    changed,
                    sha256=served_sha,
                    md5=hashlib.md5(data).hexdigest(),
                    blake2b_256=hashlib.blake2b(data, digest_size=32).hexdigest(),
                    size=len(data),
                    dist_metadata=_parse_metadata(contained),
                    served_metadata=contained if entry.served_metadata is not None else None,
                )
                self._store(changed)
            else:
                self._files[filename] = changed
                self._projects[entry.project].files[filename] = changed
            return self._public(changed)

    def set_project_info(
        self,
        project: str,
        *,
        owners: Mapping[str, str] = _UNSET,
        organization: str | None = _UNSET,
        status: str | None = _UNSET,
        status_reason: str | None = _UNSET,
        tracks: Sequence[str] = _UNSET,
        alternate_locations: Sequence[str] = _UNSET,
        author: str | None = _UNSET,
        author_email: str | None = _UNSET,
        maintainer: str | None = _UNSET,
        maintainer_email: str | None = _UNSET,
        summary: str | None = _UNSET,
        **info: Any,
    ) -> None:
        """Set what the index says about a project beyond its files.

        Only the arguments given change.  ``owners`` maps user to role
        (``"Owner"`` or ``"Maintainer"``) for the JSON API's ``ownership``;
        ``status`` is a PEP 792 marker (``None`` removes it); ``tracks`` and
        ``alternate_locations`` are PEP 708; author/maintainer/summary and any
        other keyword override the JSON API ``info`` fields that otherwise come
        from the latest release's metadata.  An unknown project is created
        with no files.
        """
        if owners is not _UNSET:
            bad = {user: role for user, role in owners.items() if role not in ROLES}
            if bad:
                raise ValueError(f"roles must be one of {ROLES}, got {bad}")
        if status is not _UNSET and status is not None and status not in PROJECT_STATUSES:
            raise ValueError(f"status must be one of {PROJECT_STATUSES} or None, got {status!r}")
        for label, urls in (("tracks", tracks), ("alternate_locations", alternate_locations)):
            if urls is not _UNSET and (isinstance(urls, str) or not all(isinstance(u, str) for u in urls)):
                raise TypeError(f"{label} must be a sequence of URL strings")
        overrides = {
            "author": author,
            "author_email": author_email,
            "maintainer": maintainer,
            "maintainer_email": maintainer_email,
            "summary": summary,
            **info,
        }
        canonical = _canonical(project)
        with self._lock:
            entry = self._projects.setdefault(canonical, _Project(name=project, canonical=canonical))
            if owners is not _UNSET:
                entry.owners = dict(owners)
            if organization is not _UNSET:
                entry.organization = organization
            if status is not _UNSET:
                entry.status = status
            if status_reason is not _UNSET:
                entry.status_reason = status_reason
            if tracks is not _UNSET:
                entry.tracks = list(tracks)
            if alternate_locations is not _UNSET:
                entry.alternate_locations = list(alternate_locations)
            entry.info.update({key: value for key, value in overrides.items() if value is not _UNSET})
            self._bump(entry)

    def set_downloads(self, project: str, *, last_day: int, last_week: int, last_month: int) -> None:
        """Set the recent-download counts served at ``/api/packages/<project>/recent``."""
        counts = {"last_day": last_day, "last_week": last_week, "last_month": last_month}
        for label, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{label} must be a non-negative int, got {value!r}")
        with self._lock:
            self._downloads[_canonical(project)] = counts

    def serial(self, project: str | None = None) -> int:
        """The project's last serial, or the index-wide one."""
        with self._lock:
            if project is None:
                return self._serial
            return self._lookup_project(project).serial

    # -- faults

    def fault(self, target: str, kind: str, *, times: int | None = None, **params: Any) -> Fault:
        """Make requests misbehave until the fault is cleared.

        ``target`` is a path prefix (``"/simple/"``, starts with ``/``), a file
        name (ends in a distribution suffix, optionally plus ``.metadata`` or
        ``.provenance``: that exact file), or a project name (its pages, JSON
        API, download counts and files).  The newest matching fault wins.
        ``times`` limits how many requests it answers.  Kinds and parameters
        are listed in ``FAULT_KINDS``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {sorted(FAULT_KINDS)}")
        required, optional = FAULT_KINDS[kind]
        missing = required - params.keys()
        unexpected = params.keys() - required - optional.keys()
        if missing or unexpected:
            raise TypeError(
                f"fault {kind!r} needs {sorted(required)} and accepts {sorted(optional)}; "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        _check_fault_params(kind, params)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive int or None, got {times!r}")
        project = None
        if not target.startswith("/") and not target.endswith(_DIST_SUFFIXES + _SIDE_FILE_SUFFIXES):
            project = _canonical(target)
        fault = Fault(target, kind, {**optional, **params}, times, _server=self, _project=project)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self, target: str | None = None) -> None:
        """Clear every fault, or only those set for ``target``."""
        with self._lock:
            self._faults = [f for f in self._faults if target is not None and f.target != target]

    def _remove_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f is not fault]

    # -- observation

    @property
    def requests(self) -> list[UpstreamRequest]:
        """Every request received, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count_requests(self, path_prefix: str = "/", *, method: str | None = "GET") -> int:
        """Requests whose path starts with ``path_prefix`` (quoted or not)."""
        prefix = unquote(path_prefix)
        return sum(
            1
            for r in self.requests
            if unquote(urlsplit(r.path).path).startswith(prefix) and (method is None or r.method == method)
        )

    def download_count(self, filename: str) -> int:
        """GET requests for the file itself (not its metadata or provenance)."""
        return sum(
            1
            for r in self.requests
            if r.method == "GET"
            and (path := unquote(urlsplit(r.path).path)).startswith("/files/")
            and path.rsplit("/", 1)[-1] == filename
        )

    @property
    def errors(self) -> list[str]:
        """Tracebacks of server bugs; a test can assert this stays empty."""
        with self._lock:
            return list(self._errors)

    # -- internals: state

    def _bump(self, project: _Project) -> None:
        self._serial += 1
        project.serial = self._serial

    def _store(self, entry: _File) -> None:
        self._files[entry.filename] = entry
        project = self._projects[entry.project]
        project.files[entry.filename] = entry
        self._bump(project)

    def _lookup_file(self, filename: str) -> _File:
        try:
            return self._files[filename]
        except KeyError:
            raise KeyError(f"no published file named {filename!r}") from None

    def _lookup_project(self, project: str) -> _Project:
        try:
            return self._projects[_canonical(project)]
        except KeyError:
            raise KeyError(f"no project named {project!r}") from None

    def _public(self, entry: _File) -> RegisteredFile:
        return RegisteredFile(
            filename=entry.filename,
            project=entry.project,
            version=entry.version,
            packagetype=entry.packagetype,
            url_path=entry.url_path,
            sha256=entry.sha256,
            size=entry.size,
            upload_time=entry.upload_time,
            yanked=entry.yanked,
            requires_python=entry.requires_python,
            metadata_url_path=entry.url_path + ".metadata" if entry.served_metadata is not None else None,
            metadata_sha256=entry.metadata_sha256,
            provenance_url_path=entry.url_path + ".provenance" if entry.provenance is not None else None,
        )

    @staticmethod
    def _identify(filename: str, project: NormalizedName, version: str | None, check_name: bool) -> tuple[str, str]:
        try:
            parsed_name, parsed_version, packagetype = parse_dist_filename(filename)
        except ValueError:
            if version is None:
                raise ValueError(f"cannot tell the version of {filename!r} from its name; pass version=") from None
            parsed_name, parsed_version = None, None
            packagetype = "bdist_wheel" if filename.endswith(".whl") else "sdist"
        try:
            chosen = Version(version) if version is not None else parsed_version
        except InvalidVersion as exc:
            raise ValueError(f"invalid version {version!r}: {exc}") from exc
        assert chosen is not None
        if check_name and parsed_name is not None and parsed_name != project:
            raise ValueError(
                f"{filename!r} belongs to project {parsed_name!r}, not {project!r} (check_name=False allows it)"
            )
        if check_name and parsed_version is not None and parsed_version != chosen:
            raise ValueError(f"{filename!r} is version {parsed_version}, not {chosen} (check_name=False allows it)")
        return str(chosen), packagetype

    @staticmethod
    def _contained_metadata(source: Path, packagetype: str) -> bytes | None:
        try:
            return wheel_metadata(source) if packagetype == "bdist_wheel" else sdist_metadata(source)
        except ValueError:
            return None

    @classmethod
    def _contained_metadata_from_bytes(cls, data: bytes, packagetype: str, filename: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="test-index-") as scratch:
            path = Path(scratch) / filename
            path.write_bytes(data)
            return cls._contained_metadata(path, packagetype)

    @staticmethod
    def _served_metadata(metadata: bool | bytes, contained: bytes | None, packagetype: str) -> bytes | None:
        if isinstance(metadata, (bytes, bytearray)):
            return bytes(metadata)
        if metadata is True:
            return contained if packagetype == "bdist_wheel" else None
        if metadata is False:
            return None
        raise TypeError(f"metadata must be a bool or bytes, got {type(metadata).__name__}")

    @staticmethod
    def _provenance_bytes(
        provenance: bool | Mapping[str, Any], filename: str, sha256: str, project: str
    ) -> bytes | None:
        if provenance is False:
            return None
        if provenance is True:
            return json.dumps(_synthetic_provenance(filename, sha256, project)).encode()
        if isinstance(provenance, Mapping):
            return json.dumps(dict(provenance)).encode()
        raise TypeError(f"provenance must be a bool or a mapping, got {type(provenance).__name__}")

    @staticmethod
    def _check_yanked(yanked: bool | str) -> bool | str:
        if not isinstance(yanked, (bool, str)):
            raise TypeError(f"yanked must be a bool or a reason string, got {type(yanked).__name__}")
        return True if yanked == "" else yanked

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)
        print(f"test index server error:\n{text}", file=sys.stderr, flush=True)

    # -- internals: request handling

    def _handle(self, handler: _Handler, method: str) -> None:
        if self._record_requests:
            with self._lock:
                self._requests.append(UpstreamRequest(method, handler.path, handler.headers))
        try:
            split = urlsplit(handler.path)
            path = unquote(split.path)
            query = parse_qs(split.query)
            route = self._route(path)
            fault = self._take_fault(path, route)
            if fault is not None and fault.kind == "hang":
                if self._stopping.wait(fault.params["seconds"]):
                    handler.close_connection = True
                    return
                fault = None
            if fault is not None and fault.kind == "disconnect":
                handler.close_connection = True
                return
            reply = self._fault_reply(fault, route, handler, query) if fault is not None else None
            if reply is None:
                reply = self._dispatch(route, split.query, query, handler)
            if fault is not None and fault.kind == "wrong_content_type":
                reply.headers = [(k, v) for k, v in reply.headers if k.lower() != "content-type"]
                reply.headers.append(("Content-Type", fault.params["content_type"]))
        except Exception:
            self._record_error(traceback.format_exc())
            fault = None
            reply = _text(500, "internal error in the test index server\n")
        self._send(handler, reply, head=method == "HEAD", fault=fault)

    def _route(self, path: str) -> _Route:
        parts = path.split("/")[1:]
        if len(parts) > 1 and parts[0] in ("pypi", "api") and parts[-1] == "":
            parts.pop()  # the JSON endpoints accept a trailing slash
        if path == "/simple":
            return _Route("redirect", location="/simple/")
        if path == "/simple/":
            return _Route("root")
        if len(parts) in (2, 3) and parts[0] == "simple" and parts[1] and (len(parts) == 2 or parts[2] == ""):
            variant = "slash" if len(parts) == 3 else "no-slash"
            return _Route("project", name=parts[1], project=_canonical_or_none(parts[1]), variant=variant)
        if len(parts) == 3 and parts[0] == "files":
            key, requested = parts[1], parts[2]
            with self._lock:
                variant, dist = "dist", requested
                if requested not in self._files:
                    for suffix in _SIDE_FILE_SUFFIXES:
                        if requested.endswith(suffix):
                            variant, dist = suffix[1:], requested.removesuffix(suffix)
                entry = self._files.get(dist)
            if entry is None or entry.url_key != key:
                return _Route("file", filename=requested)
            return _Route("file", project=entry.project, filename=requested, dist=dist, variant=variant)
        if len(parts) in (3, 4) and parts[0] == "pypi" and parts[-1] == "json":
            version = parts[2] if len(parts) == 4 else None
            return _Route("json_api", name=parts[1], project=_canonical_or_none(parts[1]), version=version)
        if len(parts) in (4, 5) and parts[:2] == ["api", "packages"] and parts[3] == "recent":
            return _Route("downloads", name=parts[2], project=_canonical_or_none(parts[2]))
        return _Route("unknown")

    def _take_fault(self, path: str, route: _Route) -> Fault | None:
        with self._lock:
            for fault in reversed(self._faults):
                if fault.target.startswith("/"):
                    matched = path.startswith(fault.target)
                elif fault._project is None:
                    matched = route.filename == fault.target
                else:
                    matched = route.project == fault._project
                if matched:
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    def _base(self) -> str:
        return "" if self._relative_urls else self.url.rstrip("/")

    def _negotiate(self, handler: _Handler, query: Mapping[str, list[str]]) -> str | None:
        if "format" in query:
            wanted = query["format"][-1]
            wanted = _LATEST_ALIASES.get(wanted, wanted)
            return wanted if wanted in self._offers else None
        accept = ",".join(handler.headers.get_all("Accept") or [])
        return choose_media_type(accept or None, self._offers)

    def _dispatch(self, route: _Route, raw_query: str, query: Mapping[str, list[str]], handler: _Handler) -> _Reply:
        suffix = f"?{raw_query}" if raw_query else ""
        if route.kind == "redirect":
            assert route.location is not None
            return _redirect(route.location + suffix, 301)

        if route.kind == "root":
            media = self._negotiate(handler, query)
            if media is None:
                return _not_acceptable(self._offers)
            with self._lock:
                listing = sorted(((p.name, p.serial) for p in self._projects.values()), key=lambda p: p[0].lower())
                serial = self._serial
            render = render_root_json if media == JSON_V1 else render_root_html
            return _page(render(listing, serial), media, serial)

        if route.kind == "project":
            project = self._snapshot(route.project)
            if project is None:
                return _text(404, "no such project\n")
            if route.name != project.canonical or route.variant == "no-slash":
                return _redirect(f"/simple/{project.canonical}/{suffix}", 301)
            media = self._negotiate(handler, query)
            if media is None:
                return _not_acceptable(self._offers)
            render = render_project_json if media == JSON_V1 else render_project_html
            return _page(render(project, self._base()), media, project.serial)

        if route.kind == "file":
            return self._file_reply(route)

        if route.kind == "json_api":
            project = self._snapshot(route.project)
            if project is None:
                return _text(404, "no such project\n")
            if route.name != project.canonical:
                tail = f"{route.version}/json" if route.version is not None else "json"
                return _redirect(f"/pypi/{project.canonical}/{tail}{suffix}", 301)
            version = None
            if route.version is not None:
                try:
                    wanted = Version(route.version)
                except InvalidVersion:
                    return _text(404, "no such release\n")
                version = next((v for v in project.versions() if Version(v) == wanted), None)
                if version is None:
                    return _text(404, "no such release\n")
            body = render_json_api(project, self.url.rstrip("/"), version)
            reply = _bytes(200, body, "application/json")
            reply.headers.append(("X-PyPI-Last-Serial", str(project.serial)))
            reply.etag = _etag_for(body)
            return reply

        if route.kind == "downloads":
            with self._lock:
                counts = dict(self._downloads.get(route.project, {})) if route.project else {}
            if not counts:
                return _text(404, "no download data\n")
            period = query.get("period", [None])[-1]
            if period is not None:
                key = f"last_{period}"
                if key not in counts:
                    return _text(400, "period must be day, week or month\n")
                counts = {key: counts[key]}
            document = {"data": counts, "package": route.project, "type": "recent_downloads"}
            return _bytes(200, json.dumps(document).encode(), "application/json")

        return _text(404, "not found\n")

    def _snapshot(self, canonical: NormalizedName | None) -> _Project | None:
        if canonical is None:
            return None
        with self._lock:
            project = self._projects.get(canonical)
            return project.snapshot() if project is not None else None

    def _file_reply(self, route: _Route) -> _Reply:
        with self._lock:
            entry = self._files.get(route.dist) if route.dist is not None else None
        if entry is None:
            return _text(404, "no such file\n")
        if route.variant == "metadata":
            if entry.served_metadata is None:
                return _text(404, "no metadata file\n")
            reply = _bytes(200, entry.served_metadata, "application/octet-stream")
            reply.etag = f'"{entry.metadata_sha256}"'
            return reply
        if route.variant == "provenance":
            if entry.provenance is None:
                return _text(404, "no provenance\n")
            return _bytes(200, entry.provenance, "application/json")
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Cache-Control", "max-age=365000000, immutable, public"),
        ]
        if entry.replacement is not None:
            reply = _Reply(200, headers, entry.replacement, len(entry.replacement))
            reply.etag = f'"{entry.served_sha256}"'
            return reply
        try:
            length = entry.source.stat().st_size
        except OSError:
            return _text(404, "file vanished from disk\n")
        return _Reply(200, headers, entry.source, length, etag=f'"{entry.sha256}"')

    # -- internals: faults that replace the response

    def _fault_reply(
        self, fault: Fault, route: _Route, handler: _Handler, query: Mapping[str, list[str]]
    ) -> _Reply | None:
        params = fault.params
        if fault.kind == "status":
            headers = [("Content-Type", "text/plain")] + list(dict(params["headers"]).items())
            body = bytes(params["body"])
            return _Reply(params["status"], headers, body, len(body))
        if fault.kind == "redirect":
            return _redirect(params["location"], params["status"])
        if fault.kind not in ("huge", "malformed", "hostile_links"):
            return None
        media = self._fault_media(route, handler, query)
        name = route.project or "project"
        if fault.kind == "huge":
            return _huge_reply(media, name, params["size_mib"], params["declare_length"])
        if fault.kind == "malformed":
            return _malformed_reply(media)
        return _hostile_links_reply(media, name, params["urls"], self.serial())

    def _fault_media(self, route: _Route, handler: _Handler, query: Mapping[str, list[str]]) -> str:
        if route.kind in ("root", "project"):
            return self._negotiate(handler, query) or self._offers[0]
        if route.kind in ("json_api", "downloads"):
            return "application/json"
        return "application/octet-stream"

    # -- internals: sending

    def _send(self, handler: _Handler, reply: _Reply, *, head: bool, fault: Fault | None) -> None:
        status, headers, body, length = reply.status, list(reply.headers), reply.body, reply.length
        if reply.etag is not None and status == 200:
            headers.append(("ETag", reply.etag))
            if _etag_matches(handler.headers.get("If-None-Match"), reply.etag):
                _close_body(body)
                status, body, length = 304, b"", 0
                kept = ("etag", "x-pypi-last-serial", "vary", "cache-control")
                headers = [(k, v) for k, v in headers if k.lower() in kept]
        if isinstance(body, Path) and (head or status == 304):
            body = b""
        if isinstance(body, Path) and fault is None:
            self._send_file(handler, status, headers, body, length)
            return
        if isinstance(body, Path):
            body = _file_chunks(body)
        chunks: Iterable[bytes] = [body] if isinstance(body, (bytes, bytearray)) else body
        if fault is not None and fault.kind == "corrupt" and status == 200:
            if fault.params["data"] is not None:
                _close_body(body)
                chunks, length = [bytes(fault.params["data"])], len(fault.params["data"])
            elif length:
                chunks = _flip_byte(chunks, length // 2)
        limit = fault.params["after"] if fault is not None and fault.kind == "truncate" else None
        rate = fault.params["bytes_per_second"] if fault is not None and fault.kind == "drip" else None
        try:
            handler.send_response(status)
            for key, value in headers:
                handler.send_header(key, value)
            if status == 304:
                pass
            elif length is None:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            else:
                handler.send_header("Content-Length", str(length))
            handler.end_headers()
            if not head and status != 304:
                self._write_body(handler, chunks, limit, rate)
        except (ConnectionError, TimeoutError, OSError):
            handler.close_connection = True
        finally:
            _close_body(chunks)

    @staticmethod
    def _send_file(
        handler: _Handler, status: int, headers: list[tuple[str, str]], path: Path, length: int | None
    ) -> None:
        """Unmodified downloads go out with sendfile(2): in benchmarks the
        upstream must not compete with the mirror for CPU."""
        try:
            with path.open("rb") as source:
                handler.send_response(status)
                for key, value in headers:
                    handler.send_header(key, value)
                handler.send_header("Content-Length", str(length))
                handler.end_headers()
                sent = handler.connection.sendfile(source, count=length)
            if sent != length:  # the file shrank under us: end the response visibly
                handler.close_connection = True
        except OSError:
            handler.close_connection = True

    def _write_body(self, handler: _Handler, chunks: Iterable[bytes], limit: int | None, rate: int | None) -> None:
        sent = 0
        for chunk in chunks:
            if limit is not None:
                chunk = chunk[: max(0, limit - sent)]
            step = max(1, rate // 10) if rate else len(chunk) or 1
            for start in range(0, len(chunk), step):
                piece = chunk[start : start + step]
                handler.wfile.write(piece)
                sent += len(piece)
                if rate and self._stopping.wait(len(piece) / rate):
                    handler.close_connection = True
                    return
            if limit is not None and sent >= limit:
                break
        if limit is not None:
            # The declared Content-Length was not honoured: the connection
            # must end so the client sees the truncation.
            handler.close_connection = True


# -- reply builders ----------------------------------------------------------------


def _bytes(status: int, body: bytes, content_type: str) -> _Reply:
    return _Reply(status, [("Content-Type", content_type)], body, len(body))


def _text(status: int, text: str) -> _Reply:
    return _bytes(status, text.encode(), "text/plain; charset=utf-8")


def _redirect(location: str, status: int) -> _Reply:
    reply = _text(status, f"see {location}\n")
    reply.headers.append(("Location", location))
    return reply


def _not_acceptable(offers: Sequence[str]) -> _Reply:
    return _text(406, "acceptable formats: " + ", ".join(offers) + "\n")


def _etag_for(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _page(body: bytes, media: str, serial: int) -> _Reply:
    reply = _bytes(200, body, _CONTENT_TYPES[media])
    reply.headers += [("Vary", "Accept"), ("X-PyPI-Last-Serial", str(serial)), ("Cache-Control", "max-age=600, public")]
    reply.etag = _etag_for(body)
    return reply


def _close_body(body: object) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _flip_byte(chunks: Iterable[bytes], position: int) -> Iterator[bytes]:
    offset = 0
    for chunk in chunks:
        if offset <= position < offset + len(chunk):
            index = position - offset
            chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
        offset += len(chunk)
        yield chunk


def _huge_reply(media: str, project: str, size_mib: float, declare_length: bool) -> _Reply:
    """A page that is well-formed but enormous: only a size limit stops it."""
    padding = int(size_mib * _MIB)
    if media == JSON_V1 or media == "application/json":
        head = json.dumps({"meta": {"api-version": API_VERSION}, "name": project, "files": []})[:-1]
        prefix, suffix, fill = (head + ', "_padding": "').encode(), b'"}', b"a"
    elif media in (HTML_V1, HTML_LEGACY):
        prefix = b"<!DOCTYPE html>\n<html><body>\n<!-- "
        suffix, fill = b" -->\n</body></html>\n", b"a"
    else:
        prefix, suffix, fill = b"", b"", b"\0"

    def chunks() -> Iterator[bytes]:
        yield prefix
        block = fill * _CHUNK
        remaining = padding
        while remaining > 0:
            yield block[: min(_CHUNK, remaining)]
            remaining -= _CHUNK
        yield suffix

    length = len(prefix) + padding + len(suffix) if declare_length else None
    return _Reply(200, [("Content-Type", _CONTENT_TYPES.get(media, media))], chunks(), length)


def _malformed_reply(media: str) -> _Reply:
    if media == JSON_V1 or media == "application/json":
        body = b'{"meta": {"api-version": "1.4"}, "name": "x", "files": [{"filename": "x-1.0.tar.gz", "url": '
    elif media in (HTML_V1, HTML_LEGACY):
        body = b'<!DOCTYPE html>\n<html><body><a href="x-1.0.tar.gz#sha256=zz\xff\xfe<a href=<<<</a'
    else:
        body = b"this is not a distribution\n"
    return _bytes(200, body, _CONTENT_TYPES.get(media, media))


def _hostile_links_reply(media: str, project: str, urls: Sequence[str], serial: int) -> _Reply:
    """A well-formed project page whose links point where no mirror should go."""
    stem = project.replace("-", "_")
    files = []
    for number, template in enumerate(urls, start=1):
        filename = f"{stem}-6.6.{number}-py3-none-any.whl"
        url = template.replace("{filename}", filename)
        files.append((filename, url, hashlib.sha256(url.encode()).hexdigest()))
    if media in (HTML_V1, HTML_LEGACY):
        anchors = "\n".join(
            f'    <a href="{html.escape(_with_hash(url, sha))}">{html.escape(filename)}</a><br />'
            for filename, url, sha in files
        )
        body = (
            "<!DOCTYPE html>\n<html>\n  <head>\n"
            f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
            f"    <title>Links for {html.escape(project)}</title>\n  </head>\n  <body>\n"
            f"{anchors}\n  </body>\n</html>\n"
        ).encode()
    else:
        document = {
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "name": project,
            "versions": [f"6.6.{n}" for n in range(1, len(files) + 1)],
            "files": [
                {"filename": filename, "url": url, "hashes": {"sha256": sha}, "yanked": False, "size": 1024}
                for filename, url, sha in files
            ],
        }
        body = json.dumps(document).encode()
        media = JSON_V1 if media == JSON_V1 else "application/json"
    return _bytes(200, body, _CONTENT_TYPES.get(media, media))


def _with_hash(url: str, sha256: str) -> str:
    if "#" in url or not url.startswith(("http://", "https://", "//")):
        return url
    return f"{url}#sha256={sha256}"


def _check_fault_params(kind: str, params: Mapping[str, Any]) -> None:
    def number(key: str, *, positive: bool = False, integer: bool = False) -> None:
        value = params[key]
        kinds = (int,) if integer else (int, float)
        if not isinstance(value, kinds) or isinstance(value, bool) or value < 0 or (positive and value == 0):
            qualifier = "positive" if positive else "non-negative"
            raise ValueError(f"{kind}: {key} must be a {qualifier} {'int' if integer else 'number'}, got {value!r}")

    if kind == "hang":
        number("seconds")
    elif kind == "drip":
        number("bytes_per_second", positive=True, integer=True)
    elif kind == "truncate":
        number("after", integer=True)
    elif kind == "huge":
        number("size_mib", positive=True)
    elif kind in ("status", "redirect") and "status" in params:
        status = params["status"]
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"{kind}: status must be an HTTP status code, got {status!r}")
    if kind == "redirect" and not isinstance(params["location"], str):
        raise TypeError("redirect: location must be a str")
    if kind == "corrupt" and params.get("data") is not None and not isinstance(params["data"], (bytes, bytearray)):
        raise TypeError("corrupt: data must be bytes or None")
    if kind == "status" and not isinstance(params.get("body", b""), (bytes, bytearray)):
        raise TypeError("status: body must be bytes")
    if kind == "hostile_links":
        urls = params.get("urls", DEFAULT_HOSTILE_URLS)
        if isinstance(urls, str) or not urls or not all(isinstance(url, str) for url in urls):
            raise ValueError("hostile_links: urls must be a non-empty sequence of strings")


# -- command line ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.index_server",
        description="Serve the wheels and sdists in a directory as a package index.",
    )
    parser.add_argument("--dir", required=True, type=Path, help="directory of distribution files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--format", choices=("both", "json", "html"), default="both")
    parser.add_argument("--relative-urls", action="store_true")
    args = parser.parse_args(argv)

    formats = ("json", "html") if args.format == "both" else (args.format,)
    server = IndexServer(
        host=args.host, port=args.port, formats=formats, relative_urls=args.relative_urls, record_requests=False
    )
    try:
        published = server.add_directory(args.dir)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    server.start()
    print(server.url, flush=True)
    projects = len({f.project for f in published})
    print(f"serving {len(published)} files of {projects} projects from {args.dir}", file=sys.stderr, flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
