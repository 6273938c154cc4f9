"""Render the mirror's own Simple API pages (PEP 691 JSON, PEP 503 HTML) as bytes.

Output is a pure function of the model, byte for byte, so a page's ETag
changes exactly when its content does.  Everything in the model came from
upstream and is treated as hostile: HTML output escapes every value, and
JSON output is ASCII-only so no raw line separators or odd code points
reach clients that splice it into other documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from packaging.utils import canonicalize_name

from mirror.simple.model import API_VERSION, DistFile, ProjectList, ProjectPage


def render_project_json(page: ProjectPage) -> bytes:
    """The page as ``application/vnd.pypi.simple.v1+json``."""
    meta: dict[str, Any] = {"api-version": API_VERSION}
    if page.tracks:
        meta["tracks"] = list(page.tracks)
    if page.last_serial is not None:
        meta["_last-serial"] = page.last_serial
    doc: dict[str, Any] = {
        "meta": meta,
        "name": page.name,
        "files": [_file_json(f) for f in page.files],
        "versions": list(page.versions),
        "alternate-locations": list(page.alternate_locations),
    }
    status = _status_json(page)
    if status:
        doc["project-status"] = status
    return _dump(doc)


def render_project_html(page: ProjectPage) -> bytes:
    """The page as ``application/vnd.pypi.simple.v1+html`` (also served as ``text/html``)."""
    head = [_meta("pypi:repository-version", API_VERSION)]
    if page.status is not None:
        head.append(_meta("pypi:project-status", page.status))
    if page.status_reason is not None:
        head.append(_meta("pypi:project-status-reason", page.status_reason))
    head += [_meta("pypi:tracks", url) for url in page.tracks]
    head += [_meta("pypi:alternate-locations", url) for url in page.alternate_locations]
    title = f"Links for {escape(page.name)}"
    links = [_file_link(f) for f in page.files]
    return _document(head, title, links, page.last_serial)


def page_of_json(body: bytes) -> ProjectPage:
    """The page ``render_project_json`` wrote, read back: the mirror's own bytes, not checked again.

    A page's HTML is rendered from its JSON when an HTML client first asks
    (pip and uv ask for JSON), so a cold page is rendered once, not twice.
    """
    doc = json.loads(body)
    meta, status = doc["meta"], doc.get("project-status", {})
    return ProjectPage(
        name=doc["name"],
        files=tuple(_file_of_json(entry) for entry in doc["files"]),
        versions=tuple(doc["versions"]),
        status=status.get("status"),
        status_reason=status.get("reason"),
        tracks=tuple(meta.get("tracks", ())),
        alternate_locations=tuple(doc["alternate-locations"]),
        last_serial=meta.get("_last-serial"),
    )


def render_list_json(projects: ProjectList) -> bytes:
    """The root index as ``application/vnd.pypi.simple.v1+json``."""
    meta: dict[str, Any] = {"api-version": API_VERSION}
    if projects.last_serial is not None:
        meta["_last-serial"] = projects.last_serial
    return _dump(
        {"meta": meta, "projects": [{"name": name} for name in projects.names]}
    )


def render_list_html(projects: ProjectList) -> bytes:
    """The root index as HTML: one link per project, to its normalized URL."""
    links = [
        f'<a href="{escape(canonicalize_name(name))}/">{escape(name)}</a>'
        for name in projects.names
    ]
    head = [_meta("pypi:repository-version", API_VERSION)]
    return _document(head, "Simple index", links, projects.last_serial)


# -- pieces ------------------------------------------------------------------


def _file_json(f: DistFile) -> dict[str, Any]:
    _require_sha256(f)
    entry: dict[str, Any] = {
        "filename": f.filename,
        "url": f.url,
        "hashes": dict(f.hashes),
        "yanked": f.yanked,
    }
    if f.requires_python is not None:
        entry["requires-python"] = f.requires_python
    metadata = _metadata_json(f.core_metadata)
    if metadata is not None:
        # PEP 714: the new key, plus the old one for clients that only know it.
        entry["core-metadata"] = metadata
        entry["dist-info-metadata"] = metadata
    if f.gpg_sig is not None:
        entry["gpg-sig"] = f.gpg_sig
    if f.size is not None:
        entry["size"] = f.size
    if f.upload_time is not None:
        entry["upload-time"] = f.upload_time
    if f.provenance is not None:
        entry["provenance"] = f.provenance
    return entry


def _file_of_json(entry: dict[str, Any]) -> DistFile:
    metadata = entry.get("core-metadata")
    return DistFile(
        filename=entry["filename"],
        url=entry["url"],
        hashes=entry["hashes"],
        requires_python=entry.get("requires-python"),
        yanked=entry["yanked"],
        size=entry.get("size"),
        upload_time=entry.get("upload-time"),
        core_metadata=metadata if isinstance(metadata, dict) else bool(metadata),
        gpg_sig=entry.get("gpg-sig"),
        provenance=entry.get("provenance"),
    )


def _metadata_json(value: bool | Mapping[str, str]) -> bool | dict[str, str] | None:
    # The booleans first: an ABC isinstance on every entry of a big page is a few percent of rendering it.
    if value is True or value is False:
        return True if value else None
    return dict(value) if value else True


def _status_json(page: ProjectPage) -> dict[str, str]:
    status: dict[str, str] = {}
    if page.status is not None:
        status["status"] = page.status
    if page.status_reason is not None:
        status["reason"] = page.status_reason
    return status


def _file_link(f: DistFile) -> str:
    sha256 = _require_sha256(f)
    url = f.url.split("#", 1)[0]
    attrs = [("href", f"{url}#sha256={sha256}")]
    if f.requires_python is not None:
        attrs.append(("data-requires-python", f.requires_python))
    if f.yanked is not False:
        # PEP 592: an empty value means yanked without a reason.
        attrs.append(("data-yanked", "" if f.yanked is True else str(f.yanked)))
    metadata = _metadata_attr(f.core_metadata)
    if metadata is not None:
        # PEP 714: both spellings, always equal.
        attrs.append(("data-core-metadata", metadata))
        attrs.append(("data-dist-info-metadata", metadata))
    if f.gpg_sig is not None:
        attrs.append(("data-gpg-sig", "true" if f.gpg_sig else "false"))
    if f.provenance is not None:
        attrs.append(("data-provenance", f.provenance))
    rendered = " ".join(f'{name}="{escape(value)}"' for name, value in attrs)
    return f"<a {rendered}>{escape(f.filename)}</a><br>"


def _metadata_attr(value: bool | Mapping[str, str]) -> str | None:
    if value is not True and value is not False:
        # HTML carries a single digest; sha256 is the one the mirror verifies.
        sha256 = value.get("sha256")
        return f"sha256={sha256}" if sha256 else "true"
    return "true" if value else None


def _require_sha256(f: DistFile) -> str:
    sha256 = f.hashes.get("sha256")
    if not sha256:
        raise ValueError(
            f"{f.filename!r} has no sha256 digest; the mirror never lists unverifiable files"
        )
    return sha256


def _meta(name: str, content: str) -> str:
    return f'<meta name="{escape(name)}" content="{escape(content)}">'


def _document(
    head: list[str], title: str, links: list[str], serial: int | None
) -> bytes:
    lines = ["<!DOCTYPE html>", "<html>", "  <head>"]
    lines += [f"    {line}" for line in head]
    lines += [
        f"    <title>{title}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>{title}</h1>",
    ]
    lines += [f"    {link}" for link in links]
    lines += ["  </body>", "</html>"]
    if serial is not None:
        lines.append(f"<!--SERIAL {int(serial)}-->")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")
