"""Read upstream Simple API pages (PEP 503 HTML, PEP 691 JSON) into the model.

Upstream bytes are hostile.  Every parser here either returns a model value
or raises ``PageError``; nothing else escapes, whatever the bytes.

Two levels of refusal keep one bad entry from hiding good ones:

* The page as a whole is refused (``PageError``) when it cannot be read at
  all or its page-level structure is wrong: too large, not UTF-8, not JSON,
  the wrong JSON shape, an API major version other than 1, a bad project
  name, too many entries, malformed repository metadata (PEP 708 / 792),
  HTML that the stdlib parser chokes on, leaves a tag or comment open (a
  truncated page, or a denial-of-service attempt), or carries far more
  markup than its links need, or a ``<base href>`` that is not http(s).
* A single file entry is skipped, and recorded in ``ProjectPage.skipped``,
  when anything in it is malformed: a filename that is not a valid wheel or
  sdist name, a URL that is not http(s), a hash that is not hex of the
  algorithm's length, no sha256 at all (the mirror never serves what it
  cannot verify), a field of the wrong type, control characters in text.
  Skipping the whole entry rather than one field is deliberate: dropping
  only a bad ``yanked`` would re-list a yanked file as installable.

Unknown keys and unknown hash algorithms are ignored, as PEP 691 requires.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import canonicalize_name
from packaging.version import Version

from mirror.simple.filenames import parse_dist
from mirror.simple.model import DistFile, ProjectList, ProjectPage, Skipped
from mirror.simple.negotiate import HTML, JSON, TEXT_HTML

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# The largest projects upstream list tens of thousands of files; this leaves
# headroom while bounding the work one page can cause.
DEFAULT_MAX_FILES = 200_000
DEFAULT_MAX_PROJECTS = 2_000_000

_MAX_URL_LENGTH = 8192
_MAX_FILENAME_LENGTH = 255
_MAX_SERIAL_DIGITS = 19

# Hex digest length of every fixed-size algorithm hashlib guarantees; any
# other algorithm name is one we could never verify, so it is ignored.
_HEX_LENGTHS = {
    name: hashlib.new(name, usedforsecurity=False).digest_size * 2
    for name in hashlib.algorithms_guaranteed
    if not name.startswith("shake_")
}

# C0 controls except tab/newline/return, DEL, C1 controls, lone surrogates
# (JSON "\ud800" escapes decode to those and cannot be re-encoded).
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# URLs are resolved and fetched; whitespace, controls and backslashes are
# where URL parsers disagree with each other, so refuse them outright.
_BAD_URL_CHARS = re.compile("[\x00-\x20\x7f-\x9f\\\\\ud800-\udfff]")
# An absolute URL that urlsplit and urlunsplit give back unchanged: lower-case http(s)
# scheme, a lower-case host name (no user, port or IP literal), no query.  A page's
# tens of thousands of links are nearly all of this shape; the rest take the general path.
_PLAIN_URL = re.compile(r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?:/[^?#]*)?(?:#.*)?", re.ASCII | re.DOTALL)
# Real distribution filenames are plain ASCII; anything else (path
# separators, spaces, unicode look-alikes) is refused before packaging sees it.
_FILENAME_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")
_HEX = re.compile(r"[0-9a-fA-F]+")
_API_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")
_STATUS = re.compile(r"[a-z][a-z0-9-]{0,63}")
_UPLOAD_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z"
)
_UNTERMINATED = re.compile(r"<[A-Za-z/!?]")
_SERIAL_COMMENT = re.compile(rf"\s*SERIAL\s+([0-9]{{1,{_MAX_SERIAL_DIGITS}}})\s*")


class PageError(ValueError):
    """An upstream page that cannot be used at all; the message says why."""


class _Skip(Exception):
    """One file entry is unusable; the message says why."""


# -- entry points ------------------------------------------------------------


def parse_project_page(
    body: bytes,
    content_type: str,
    base_url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> ProjectPage:
    """Parse a project page in whichever format the response's Content-Type names."""
    fmt = _format_of(content_type)
    if fmt == "json":
        return parse_project_json(
            body, base_url=base_url, max_bytes=max_bytes, max_files=max_files
        )
    return parse_project_html(
        body, base_url=base_url, max_bytes=max_bytes, max_files=max_files
    )


def parse_project_list(
    body: bytes,
    content_type: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_projects: int = DEFAULT_MAX_PROJECTS,
) -> ProjectList:
    """Parse the root index in whichever format the response's Content-Type names."""
    if _format_of(content_type) == "json":
        return parse_project_list_json(
            body, max_bytes=max_bytes, max_projects=max_projects
        )
    return parse_project_list_html(body, max_bytes=max_bytes, max_projects=max_projects)


def parse_project_json(
    body: bytes,
    *,
    base_url: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> ProjectPage:
    """Parse a PEP 691 project page; relative URLs resolve against ``base_url``.

    The project name is taken from the page and normalized; checking that it
    is the project that was asked for is the caller's business.
    """
    doc = _load_json(body, max_bytes)
    meta = _check_meta(doc)
    name = _project_name(_field(doc, "name", str, "the page"))
    raw_files = _field(doc, "files", list, "the page")
    if len(raw_files) > max_files:
        raise PageError(
            f"the page lists {len(raw_files)} files, more than the limit of {max_files}"
        )
    files, file_versions, skipped = [], set(), []
    for index, raw in enumerate(raw_files):
        # Each entry is dropped once read: a big project's page is tens of thousands of them,
        # and the parsed document would otherwise stay whole beside the files made from it.
        raw_files[index] = None
        try:
            dist, version = _json_file(raw, base_url)
        except _Skip as why:
            skipped.append(Skipped(_entry_label(raw, index), str(why)))
        else:
            files.append(dist)
            file_versions.add(version)
    versions = doc.get("versions")
    if versions is None:
        version_list = _sorted_versions(file_versions)
    else:
        version_list = _unique_texts(_text_list(versions, "versions", max_files))
    status, reason = _json_status(doc.get("project-status"))
    tracks = _url_list(meta.get("tracks"), "meta.tracks", base_url)
    alternates = _url_list(
        doc.get("alternate-locations"), "alternate-locations", base_url
    )
    return ProjectPage(
        name=name,
        files=tuple(files),
        versions=version_list,
        status=status,
        status_reason=reason,
        tracks=tracks,
        alternate_locations=alternates,
        last_serial=_serial(meta.get("_last-serial")),
        skipped=tuple(skipped),
    )


def parse_project_html(
    body: bytes,
    *,
    base_url: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> ProjectPage:
    """Parse a PEP 503 project page fetched from ``base_url`` (the page's own URL).

    HTML does not name the project, so the name is the last path segment of
    ``base_url``, as PEP 503 lays URLs out.  HTML has no ``versions`` list
    either; the versions of the listed files stand in for it, which is what
    PEP 700 requires of that list anyway (every file's version is in it).
    """
    scan = _scan_html(body, max_bytes, max_files)
    name = _project_name(_last_segment(base_url))
    _check_repository_version(scan.metas.get("pypi:repository-version", []))
    page_base = _page_base(base_url, scan.base_href)
    files, file_versions, skipped = [], set(), []
    for index, (attrs, text) in enumerate(scan.anchors):
        try:
            dist, version = _html_file(attrs, text, page_base)
        except _Skip as why:
            skipped.append(
                Skipped(
                    _clip(text.strip() or attrs.get("href") or f"link {index}"),
                    str(why),
                )
            )
        else:
            files.append(dist)
            file_versions.add(version)
    status = _first_meta(scan.metas, "pypi:project-status")
    reason = _first_meta(scan.metas, "pypi:project-status-reason")
    return ProjectPage(
        name=name,
        files=tuple(files),
        versions=_sorted_versions(file_versions),
        status=_status_value(status) if status is not None else None,
        status_reason=_page_text(reason, "project status reason")
        if reason is not None
        else None,
        tracks=_url_list(scan.metas.get("pypi:tracks", []), "pypi:tracks", page_base),
        alternate_locations=_url_list(
            scan.metas.get("pypi:alternate-locations", []),
            "pypi:alternate-locations",
            page_base,
        ),
        last_serial=scan.serial,
        skipped=tuple(skipped),
    )


def parse_project_list_json(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_projects: int = DEFAULT_MAX_PROJECTS,
) -> ProjectList:
    """Parse the PEP 691 root index; invalid project names are skipped."""
    doc = _load_json(body, max_bytes)
    meta = _check_meta(doc)
    projects = _field(doc, "projects", list, "the index")
    if len(projects) > max_projects:
        raise PageError(
            f"the index lists {len(projects)} projects, more than the limit of {max_projects}"
        )
    names, skipped = [], []
    for index, entry in enumerate(projects):
        raw = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(raw, str):
            skipped.append(
                Skipped(
                    _entry_label(entry, index), "not an object with a string 'name'"
                )
            )
            continue
        _collect_name(raw, names, skipped)
    return ProjectList(
        names=_unique_texts(names),
        last_serial=_serial(meta.get("_last-serial")),
        skipped=tuple(skipped),
    )


def parse_project_list_html(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_projects: int = DEFAULT_MAX_PROJECTS,
) -> ProjectList:
    """Parse the PEP 503 root index: one link per project, its text the name."""
    scan = _scan_html(body, max_bytes, max_projects)
    _check_repository_version(scan.metas.get("pypi:repository-version", []))
    names: list[str] = []
    skipped: list[Skipped] = []
    for _attrs, text in scan.anchors:
        _collect_name(text.strip(), names, skipped)
    return ProjectList(
        names=_unique_texts(names), last_serial=scan.serial, skipped=tuple(skipped)
    )


# -- content types -----------------------------------------------------------


def _format_of(content_type: str) -> str:
    """ "json" or "html" for a Simple API Content-Type; PageError for anything else."""
    media, *params = (content_type or "").split(";")
    media = media.strip().lower()
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip(
            '"'
        ).lower() not in ("utf-8", "utf8"):
            raise PageError(
                f"unsupported charset in content type {_clip(content_type)!r}; only UTF-8 is read"
            )
    if media == JSON:
        return "json"
    if media in (HTML, TEXT_HTML):
        return "html"
    raise PageError(f"unsupported content type {_clip(content_type)!r}")


# -- JSON --------------------------------------------------------------------


def _load_json(body: bytes, max_bytes: int) -> dict[str, Any]:
    try:
        doc = json.loads(_decode(body, max_bytes))
    except ValueError as exc:  # JSONDecodeError, and int() refusing huge numbers
        raise PageError(f"the page is not valid JSON: {exc}") from None
    except RecursionError:
        raise PageError("the JSON nests too deeply") from None
    if not isinstance(doc, dict):
        raise PageError(f"the JSON document must be an object, not {_json_type(doc)}")
    return doc


def _check_meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = _field(doc, "meta", dict, "the page")
    version = meta.get("api-version")
    if not isinstance(version, str):
        raise PageError("meta.api-version is missing or not a string")
    _check_repository_version([version])
    return meta


def _json_file(raw: Any, base_url: str) -> tuple[DistFile, Version]:
    if not isinstance(raw, dict):
        raise _Skip(f"a file entry must be an object, not {_json_type(raw)}")
    filename = _file_field(raw, "filename", str, required=True)
    version = _check_filename(filename)
    url, _fragment = _file_url(_file_field(raw, "url", str, required=True), base_url)
    hashes = _hashes(_file_field(raw, "hashes", dict, required=True).items())
    requires_python = _file_field(raw, "requires-python", str)
    yanked = _file_field(raw, "yanked", (bool, str))
    metadata = raw.get("core-metadata")
    if metadata is None:
        metadata = raw.get("dist-info-metadata")
    if metadata is not None and not isinstance(metadata, (bool, dict)):
        raise _Skip(
            f"core-metadata must be a boolean or an object, not {_json_type(metadata)}"
        )
    size = _file_field(raw, "size", int)
    if isinstance(size, bool) or (size is not None and size < 0):
        raise _Skip("size must be a non-negative integer")
    upload_time = _file_field(raw, "upload-time", str)
    provenance = _file_field(raw, "provenance", str)
    dist = DistFile(
        filename=filename,
        url=url,
        hashes=hashes,
        requires_python=_file_text(requires_python, "requires-python"),
        yanked=_yanked(yanked),
        size=size,
        upload_time=_upload_time(upload_time),
        core_metadata=_json_metadata(metadata),
        gpg_sig=_file_field(raw, "gpg-sig", bool),
        provenance=_file_url(provenance, base_url)[0]
        if provenance is not None
        else None,
        parsed_version=str(version),
    )
    return dist, version


def _json_metadata(value: bool | dict[str, Any] | None) -> bool | dict[str, str]:
    # PEP 691: a truthy value means the metadata file exists; {} is falsy.
    if not value:
        return False
    if value is True:
        return {}
    return _hashes(value.items(), need_sha256=False)


def _json_status(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise PageError(f"project-status must be an object, not {_json_type(value)}")
    # PEP 792's prose says "state" while its example and the public index say
    # "status"; accept either, prefer the one in use.
    status = value.get("status", value.get("state"))
    reason = value.get("reason")
    if status is not None and not isinstance(status, str):
        raise PageError("project-status.status must be a string")
    if reason is not None and not isinstance(reason, str):
        raise PageError("project-status.reason must be a string")
    return (
        _status_value(status) if status is not None else None,
        _page_text(reason, "project status reason") if reason is not None else None,
    )


# -- HTML --------------------------------------------------------------------


class _Scan:
    def __init__(self) -> None:
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.metas: dict[str, list[str]] = {}
        self.base_href: str | None = None
        self.serial: int | None = None


class _Scanner(HTMLParser):
    """Collects links, ``pypi:`` meta tags, ``<base href>`` and the serial comment."""

    def __init__(self, max_links: int) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = _Scan()
        self._max_links = max_links
        self._open: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._finish_link()
            first = _first_attributes(attrs)
            if first.get("href") is not None:
                if len(self.scan.anchors) >= self._max_links:
                    raise PageError(f"the page has more than {self._max_links} links")
                self._open = (first, [])
        elif tag == "meta":
            first = _first_attributes(attrs)
            name = (first.get("name") or "").strip().lower()
            if name.startswith("pypi:"):
                self.scan.metas.setdefault(name, []).append(first.get("content") or "")
        elif tag == "base" and self.scan.base_href is None:
            self.scan.base_href = _first_attributes(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish_link()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1].append(data)

    def handle_comment(self, data: str) -> None:
        match = _SERIAL_COMMENT.fullmatch(data)
        if match is not None:
            self.scan.serial = int(match.group(1))

    def close(self) -> None:
        super().close()
        self._finish_link()

    def _finish_link(self) -> None:
        if self._open is not None:
            attrs, text = self._open
            self.scan.anchors.append((attrs, "".join(text)))
            self._open = None


def _scan_html(body: bytes, max_bytes: int, max_links: int) -> _Scan:
    text = _decode(body, max_bytes)
    # html.parser costs microseconds per "<", so a page of nothing but
    # markup would take minutes; a real page needs a few tags per link.
    markup_limit = 4 * max_links + 1024
    if text.count("<") > markup_limit:
        raise PageError(
            f"the page has more than {markup_limit} tags, far more than its links could need"
        )
    scanner = _Scanner(max_links)
    try:
        scanner.feed(text)
        # feed() stops at a tag, comment or declaration that never ends and
        # keeps the rest unparsed.  close() would then re-scan to the end of
        # the page once per "<" that follows: quadratic, so a few hundred KB
        # of "<a <a <a" pins a worker for minutes.  Such a page is malformed
        # (or truncated), so refuse it before close() gets the chance.
        leftover = getattr(scanner, "rawdata", "")
        if _UNTERMINATED.match(leftover):
            line, column = scanner.getpos()
            raise PageError(
                f"unterminated tag, comment or declaration at line {line}, column {column + 1}"
            )
        scanner.close()
    except PageError:
        raise
    except Exception as exc:  # noqa: BLE001 - see below
        # html.parser signals some malformed declarations ("<![foo[") with
        # AssertionError and may raise others on input its authors never
        # imagined; for us every one of them means "unreadable page".
        raise PageError(
            f"the HTML could not be parsed: {type(exc).__name__}: {_clip(str(exc))}"
        ) from None
    return scanner.scan


def _first_attributes(attrs: list[tuple[str, str | None]]) -> dict[str, str | None]:
    # HTML keeps the first of duplicated attributes; so do we.
    first: dict[str, str | None] = {}
    for key, value in attrs:
        first.setdefault(key, value)
    return first


def _html_file(
    attrs: dict[str, str | None], text: str, base_url: str
) -> tuple[DistFile, Version]:
    url, fragment = _file_url(attrs.get("href") or "", base_url)
    filename = text.strip() or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    version = _check_filename(filename)
    hashes = _hashes(_fragment_hash(fragment))
    requires_python = attrs.get("data-requires-python")
    metadata = attrs.get("data-core-metadata")
    if metadata is None:
        metadata = attrs.get("data-dist-info-metadata")
    provenance = attrs.get("data-provenance")
    dist = DistFile(
        filename=filename,
        url=url,
        hashes=hashes,
        requires_python=_file_text(requires_python, "data-requires-python"),
        yanked=_html_yanked(attrs),
        core_metadata=_html_metadata(metadata),
        gpg_sig=_html_gpg_sig(attrs.get("data-gpg-sig")),
        provenance=_file_url(provenance, base_url)[0]
        if provenance is not None
        else None,
        parsed_version=str(version),
    )
    return dist, version


def _fragment_hash(fragment: str) -> list[tuple[str, str]]:
    name, sep, value = fragment.partition("=")
    return [(name, value)] if sep else []


def _html_yanked(attrs: dict[str, str | None]) -> bool | str:
    if "data-yanked" not in attrs:
        return False
    # PEP 592: present without a value (or empty) means yanked, no reason.
    reason = attrs["data-yanked"]
    return _yanked(reason or True)


def _html_metadata(value: str | None) -> bool | dict[str, str]:
    if value is None:
        return False
    value = value.strip()
    if value.lower() == "true":
        return {}
    name, sep, digest = value.partition("=")
    if not sep:
        raise _Skip(
            f"data-core-metadata must be 'true' or '<hash>=<hex>', not {_clip(value)!r}"
        )
    return _hashes([(name, digest)], need_sha256=False)


def _html_gpg_sig(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise _Skip(f"data-gpg-sig must be 'true' or 'false', not {_clip(value)!r}")
    return lowered == "true"


def _page_base(base_url: str, base_href: str | None) -> str:
    """The URL relative links resolve against: ``<base href>`` if usable, as in browsers and pip."""
    if base_href is None or not base_href.strip():
        return base_url  # a blank <base href> names the page itself
    try:
        return _file_url(base_href, base_url)[0]
    except _Skip as why:
        raise PageError(f"unusable <base href>: {why}") from None


def _first_meta(metas: dict[str, list[str]], name: str) -> str | None:
    values = metas.get(name)
    return values[0] if values else None


# -- shared field checks -----------------------------------------------------


def _decode(body: bytes, max_bytes: int) -> str:
    if len(body) > max_bytes:
        raise PageError(
            f"the page is {len(body)} bytes, more than the limit of {max_bytes}"
        )
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageError(
            f"the page is not UTF-8 (bad byte at offset {exc.start})"
        ) from None
    return text.removeprefix("\ufeff")


def _field(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        expected = (
            "a list" if kind is list else "an object" if kind is dict else "a string"
        )
        found = "missing" if value is None else f"{_json_type(value)}"
        raise PageError(f"{where} must have {key!r} as {expected}, found {found}")
    return value


def _file_field(
    raw: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
) -> Any:
    value = raw.get(key)
    if value is None:
        if required:
            raise _Skip(f"missing {key!r}")
        return None
    if not isinstance(value, kind):
        raise _Skip(f"{key!r} has the wrong type ({_json_type(value)})")
    return value


def _check_filename(filename: str) -> Version:
    if (
        len(filename) > _MAX_FILENAME_LENGTH
        or _FILENAME_CHARS.fullmatch(filename) is None
    ):
        raise _Skip("filename has characters or a length no distribution filename has")
    parsed = parse_dist(filename)
    if parsed is None:
        raise _Skip("not a valid wheel or sdist filename")
    return parsed[1]


def _file_url(raw: str, base_url: str) -> tuple[str, str]:
    """Resolve ``raw`` against ``base_url``: (absolute http(s) URL without fragment, fragment)."""
    raw = raw.strip(" \t\n\r\f")
    if not raw:
        raise _Skip("empty URL")
    if len(raw) > _MAX_URL_LENGTH or _BAD_URL_CHARS.search(raw):
        raise _Skip(
            "URL is too long or has whitespace, control characters or backslashes"
        )
    if _PLAIN_URL.fullmatch(raw):  # nearly every link: what the general path would give back
        url, _, fragment = raw.partition("#")
        return url, fragment
    return _resolved_url(raw, base_url)


def _resolved_url(raw: str, base_url: str) -> tuple[str, str]:
    """``_file_url`` for any URL: parsed, resolved if relative, checked and put together again."""
    try:
        parts = urlsplit(raw)
        if not parts.scheme:
            # Only relative URLs go through urljoin: it re-parses with the
            # old ";params" rules and would drop a trailing ";" from an
            # absolute URL, changing the address we later fetch.
            parts = urlsplit(urljoin(base_url, raw))
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise _Skip("malformed URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Skip(
            f"URL scheme {parts.scheme!r} is not http or https, or the host is missing"
        )
    return urlunsplit(parts._replace(fragment="")), parts.fragment


def _hashes(
    items: Iterable[tuple[Any, Any]], *, need_sha256: bool = True
) -> dict[str, str]:
    """Validated, lower-cased digests of the algorithms we can verify."""
    hashes: dict[str, str] = {}
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            raise _Skip("hash names and values must be strings")
        name = name.strip().lower()
        length = _HEX_LENGTHS.get(name)
        if length is None:
            continue
        if len(value) != length or _HEX.fullmatch(value) is None:
            raise _Skip(f"{name} digest is not {length} hex digits")
        value = value.lower()
        if hashes.setdefault(name, value) != value:
            raise _Skip(f"two different {name} digests")
    if need_sha256 and "sha256" not in hashes:
        raise _Skip("no sha256 digest, so the file could never be verified")
    return hashes


def _yanked(value: bool | str | None) -> bool | str:
    if value is None or value is False or value == "":
        return False
    if value is True:
        return True
    return _file_text(value, "yanked reason") or True


def _upload_time(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if _UPLOAD_TIME.fullmatch(value) is None:
            raise ValueError
        datetime.fromisoformat(value[:-1])  # a real date: no February 30th
    except ValueError:
        raise _Skip(
            f"upload-time {_clip(value)!r} is not a yyyy-mm-ddThh:mm:ss[.ffffff]Z time"
        ) from None
    return value


def _file_text(value: str | None, what: str) -> str | None:
    if value is not None and _BAD_TEXT.search(value):
        raise _Skip(f"{what} contains control characters")
    return value


def _page_text(value: str, what: str) -> str:
    if _BAD_TEXT.search(value):
        raise PageError(f"{what} contains control characters")
    return value


def _status_value(value: str) -> str:
    value = value.strip().lower()
    if _STATUS.fullmatch(value) is None:
        raise PageError(f"project status {_clip(value)!r} is not a status marker")
    return value


def _check_repository_version(values: list[str]) -> None:
    for value in values:
        match = _API_VERSION.fullmatch(value.strip())
        if match is None:
            raise PageError(f"repository version {_clip(value)!r} is not Major.Minor")
        if int(match.group(1)) != 1:
            raise PageError(
                f"repository version {value.strip()} has major version {match.group(1)}; only 1 is understood"
            )


def _project_name(raw: str) -> str:
    try:
        return canonicalize_name(raw, validate=True)
    except ValueError:
        raise PageError(f"{_clip(raw)!r} is not a valid project name") from None


def _last_segment(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def _collect_name(raw: str, names: list[str], skipped: list[Skipped]) -> None:
    try:
        canonicalize_name(raw, validate=True)
    except ValueError:
        skipped.append(Skipped(_clip(raw), "not a valid project name"))
    else:
        names.append(raw)


def _text_list(value: Any, what: str, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PageError(f"{what} must be a list of strings")
    if len(value) > limit:
        raise PageError(
            f"{what} has {len(value)} entries, more than the limit of {limit}"
        )
    return [_page_text(item, what) for item in value]


def _url_list(value: Any, what: str, base_url: str) -> tuple[str, ...]:
    if value is None:
        return ()
    urls = []
    for raw in _text_list(value, what, DEFAULT_MAX_FILES):
        try:
            url, fragment = _file_url(raw, base_url)
        except _Skip as why:
            raise PageError(f"{what}: {why}") from None
        urls.append(url + ("#" + fragment if fragment else ""))
    return _unique_texts(urls)


def _unique_texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _sorted_versions(found: set[Version]) -> tuple[str, ...]:
    """The versions the listed files carry, oldest first, normalized."""
    return _unique_texts(str(v) for v in sorted(found))


def _serial(value: Any) -> int | None:
    # ``_last-serial`` is the public index's private key: a hint, not a contract.
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < 10**_MAX_SERIAL_DIGITS
    ):
        return value
    return None


def _entry_label(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("filename"), str):
        return _clip(raw["filename"])
    return f"entry {index}"


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), "null" if value is None else type(value).__name__)


def _clip(text: str, limit: int = 120) -> str:
    """``text`` made safe to log: bounded, and without controls or lone surrogates."""
    text = _BAD_TEXT.sub("\N{REPLACEMENT CHARACTER}", text)
    return text if len(text) <= limit else text[:limit] + "..."
