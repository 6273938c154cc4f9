"""What upstream's project JSON says about a project: the strings a reviewer reads, and the
metadata the impersonation detector compares with a resembled project's (``project_metadata``).

Summary, authors, owners and project URLs are exactly what a look-alike
project fakes, so the first screening keeps them in its snapshot (the
``upstream`` entry, in the shape ``stored_fields`` writes) and the review
page shows what screening saw without asking upstream again.  Screening and
review both read the document through this one module; neither imports the
other.  Every value is attacker-controlled text: the result holds plain,
length-bounded strings, and whoever shows them must escape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from detectors.facts import ProjectMetadata

MAX_TEXT = 500
MAX_URLS = 20
MAX_OWNERS = 50
# What the impersonation detector compares (``project_metadata``): a README on its
# first few thousand characters, other texts and URLs a little longer than shown.
MAX_DESCRIPTION = 8_000
MAX_METADATA_TEXT = 1_000
MAX_METADATA_URLS = 30
FIELDS = ("summary", "author", "author_email", "maintainer", "maintainer_email", "license", "version", "home_page")


@dataclass(frozen=True)
class UpstreamInfo:
    """Upstream metadata; ``error`` says why it is missing when it is."""

    fields: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    project_urls: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    # Where the facts come from: "stored" (kept at screening) or "live" (asked now), and when.
    origin: str = "live"
    seen_at: datetime | None = None


def ownership_roles(data: Mapping[str, Any] | None) -> dict[str, str] | None:
    """user -> role from the project JSON's ``ownership`` table; None when the index does not say."""
    ownership = (data or {}).get("ownership")
    if not isinstance(ownership, Mapping) or not isinstance(ownership.get("roles"), list):
        return None
    roles = {}
    for item in ownership["roles"]:
        if isinstance(item, Mapping) and isinstance(item.get("user"), str):
            roles[item["user"]] = str(item.get("role", ""))
    return roles


def extract(document: Mapping[str, Any] | None) -> UpstreamInfo:
    """Pick the reviewer-relevant strings out of a project JSON document."""
    if document is None:
        return UpstreamInfo(error="upstream does not have this project")
    info = document.get("info")
    info = info if isinstance(info, Mapping) else {}
    fields = {k: _text(info[k]) for k in FIELDS if isinstance(info.get(k), str) and info[k].strip()}
    urls = info.get("project_urls")
    project_urls = (
        {_text(str(k)): _text(v) for k, v in list(urls.items())[:MAX_URLS] if isinstance(v, str)}
        if isinstance(urls, Mapping)
        else {}
    )
    roles = list((ownership_roles(document) or {}).items())[:MAX_OWNERS]
    owners = {_text(user): _text(role) for user, role in roles}
    return UpstreamInfo(fields=fields, owners=owners, project_urls=project_urls)


def stored_fields(info: UpstreamInfo) -> dict[str, Any]:
    """The JSON-ready form kept in a snapshot's ``upstream`` entry."""
    return {"fields": dict(info.fields), "owners": dict(info.owners), "project_urls": dict(info.project_urls)}


def stored(snapshot: Mapping[str, Any] | None, taken_at: datetime | None) -> UpstreamInfo | None:
    """What screening saw, when its snapshot kept an ``upstream`` entry; None otherwise.

    Read defensively: a snapshot is data from the database, whatever wrote it.
    """
    entry = (snapshot or {}).get("upstream")
    if not isinstance(entry, Mapping):
        return None

    def strings(key: str) -> dict[str, str]:
        value = entry.get(key)
        if not isinstance(value, Mapping):
            return {}
        return {_text(str(k)): _text(v) for k, v in list(value.items())[:MAX_OWNERS] if isinstance(v, str)}

    return UpstreamInfo(
        fields=strings("fields"), owners=strings("owners"), project_urls=strings("project_urls"),
        origin="stored", seen_at=taken_at,
    )


def project_metadata(document: Mapping[str, Any] | None) -> ProjectMetadata | None:
    """The impersonation-relevant part of a project JSON document; None without one.

    Every value is bounded attacker text; ``owners`` and ``organization``
    are the index's own ownership table (None when it does not say).
    """
    if document is None:
        return None
    info = document.get("info")
    info = info if isinstance(info, Mapping) else {}

    def text(key: str, limit: int = MAX_METADATA_TEXT) -> str | None:
        value = info.get(key)
        return value[:limit] if isinstance(value, str) and value.strip() else None

    urls = info.get("project_urls")
    project_urls = (
        {str(k)[:MAX_METADATA_TEXT]: v[:MAX_METADATA_TEXT] for k, v in list(urls.items())[:MAX_METADATA_URLS]
         if isinstance(v, str)}
        if isinstance(urls, Mapping)
        else {}
    )
    roles = ownership_roles(document)
    ownership = document.get("ownership")
    organization = ownership.get("organization") if isinstance(ownership, Mapping) else None
    return ProjectMetadata(
        summary=text("summary"),
        description=text("description", MAX_DESCRIPTION),
        home_page=text("home_page"),
        project_urls=project_urls,
        author=text("author"),
        author_email=text("author_email"),
        owners=frozenset(roles) if roles is not None else None,
        organization=organization if isinstance(organization, str) and organization else None,
    )


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
