"""The project JSON API (``/pypi/NAME/json``), rendered from a served page (pure).

pip-tools, poetry and pdm read it for digests and dependencies; without it
pip-tools downloads every file of every pinned version just to hash it.  It
is rendered from the page the mirror serves, so it lists exactly what the
page lists: held and denied releases stay out, URLs point at the mirror.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

from packaging.version import InvalidVersion, Version

from mirror.simple.filenames import package_type, python_tag
from mirror.simple.metadata import same_version
from mirror.simple.model import DistFile, ProjectPage


def latest_version(versions: Sequence[str]) -> str | None:
    """What the public index calls a project's version: the newest final release, else the newest."""
    parsed = []
    for text in versions:
        try:
            parsed.append((Version(text), text))
        except InvalidVersion:
            continue
    finals = [item for item in parsed if not item[0].is_prerelease]
    chosen = max(finals or parsed, default=None)
    return chosen[1] if chosen else None


def releases_of(page: ProjectPage) -> dict[str, list[DistFile]]:
    """Files per version as the filenames say, in page order."""
    releases: dict[str, list[DistFile]] = {}
    for f in page.files:
        version = f.version
        if version is not None:
            releases.setdefault(version, []).append(f)
    return releases


def file_entry(f: DistFile, page_url: str) -> dict[str, Any]:
    upload_time = f.upload_time or None
    return {
        "filename": f.filename,
        "url": urljoin(page_url, f.url),
        "digests": {name: value for name, value in f.hashes.items() if name in ("sha256", "md5", "blake2b_256")},
        "packagetype": package_type(f.filename),
        "python_version": python_tag(f.filename),
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": upload_time.removesuffix("Z").split(".")[0] if upload_time else None,
        "upload_time_iso_8601": upload_time,
        "yanked": bool(f.yanked),
        "yanked_reason": f.yanked if isinstance(f.yanked, str) else None,
        "has_sig": False,
    }


def render_json_api(
    page: ProjectPage,
    page_url: str,
    *,
    version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bytes | None:
    """The JSON API document; None when ``version`` is not on the page.

    ``page_url`` is the absolute URL of the project's Simple page, which file
    URLs are relative to.  ``metadata`` is what is known of the chosen
    version's core metadata (summary, requires_dist, ...); unknown stays null.
    """
    releases = releases_of(page)
    chosen = version if version is not None else latest_version(list(releases))
    if version is not None and version not in releases:
        matches = [v for v in releases if same_version(v, version)]
        if not matches:
            return None
        chosen = matches[0]
    known = dict(metadata or {})
    files = releases.get(chosen, []) if chosen else []
    info = {
        "name": page.name,
        "version": chosen,
        "summary": known.get("summary"),
        "requires_dist": known.get("requires_dist"),
        "requires_python": known.get("requires_python") or next((f.requires_python for f in files if f.requires_python), None),
        "yanked": bool(files) and all(f.yanked for f in files),
        "yanked_reason": None,
    }
    document: dict[str, Any] = {
        "info": info,
        "last_serial": page.last_serial,
        "urls": [file_entry(f, page_url) for f in files],
        "vulnerabilities": [],
    }
    if version is None:
        document["releases"] = {v: [file_entry(f, page_url) for f in fs] for v, fs in releases.items()}
    return json.dumps(document, separators=(",", ":")).encode()

