"""Turn an upstream project page into the page the mirror serves (pure).

This is the one place where filtering happens, so that a warm request only
reads stored bytes: files without a sha256 are dropped (we could not verify
them), hashes are pinned (a changed file is blocked), held releases vanish,
and every file URL is rewritten to point at the mirror.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from collections.abc import Iterable, Mapping

from packaging.utils import canonicalize_version

from mirror.clock import parse_utc
from mirror.simple.model import DistFile, ProjectPage

FILES_PREFIX = "../../files/"
PROVENANCE_SUFFIX = ".provenance"  # PEP 740: a file's provenance beside it


@dataclass(frozen=True)
class Pin:
    """What the mirror remembers of a file the first time it saw it."""

    filename: str
    sha256: str
    version: str | None
    size: int | None
    upstream_url: str
    metadata_sha256: str | None
    upload_time: datetime | None
    blocked_reason: str | None = None
    provenance_url: str | None = None
    removed: bool = False  # upstream stopped listing it (recorded once)


@dataclass(frozen=True)
class ChangedFile:
    """Upstream now lists a pinned filename with another hash."""

    filename: str
    listed_sha256: str


@dataclass
class Built:
    page: ProjectPage
    new_pins: list[Pin] = field(default_factory=list)
    changed: list[ChangedFile] = field(default_factory=list)
    # Pinned files upstream stopped listing since the last build, and ones it lists again.
    removed: list[str] = field(default_factory=list)
    relisted: list[str] = field(default_factory=list)


def derives_metadata(filename: str, size: int | None, min_bytes: int | None) -> bool:
    """Whether the mirror offers core metadata of its own for a file upstream offers none for.

    Only wheels hold a METADATA file the mirror can read out.  Each metadata
    file costs the client one more request, so a wheel under ``min_bytes``
    (``[upstream] derive_metadata_min_bytes``; None: never) goes without: it
    is fetched and scanned in moments.  An unstated size counts as big.
    """
    return min_bytes is not None and filename.endswith(".whl") and (size is None or size >= min_bytes)


def mirror_file_url(sha256: str, filename: str, files_base: str = FILES_PREFIX) -> str:
    return f"{files_base}{sha256}/{filename}"


def files_base_for(public_url: str) -> str:
    """Where a page's file links point: absolute under ``[server] public_url`` when it is set.

    Relative links work everywhere, but a client resolves each one against
    the page (pip spends about a tenth of a warm install in ``urljoin`` on a
    big stack); absolute ones it takes as they are.
    """
    return f"{public_url.rstrip('/')}/files/" if public_url else FILES_PREFIX


def build_page(
    upstream: ProjectPage,
    pins: Mapping[str, Pin],
    *,
    hidden_versions: Iterable[str] = (),
    files_base: str = FILES_PREFIX,
    derive_metadata_from: int | None = None,
) -> Built:
    """Filter, pin and rewrite ``upstream``; ``pins`` maps filename -> Pin.

    ``derive_metadata_from``: a wheel upstream gives no core metadata for is
    said to have it (``true``, its hash unknown until the mirror reads it
    out) when ``derives_metadata`` says so.
    """
    hidden = {canonicalize_version(v) for v in hidden_versions}
    built = Built(page=upstream)
    kept: list[DistFile] = []
    for f in upstream.files:
        sha256 = (f.hashes.get("sha256") or "").lower()
        if not sha256:  # unverifiable: never listed
            continue
        version = f.version
        pin = pins.get(f.filename)
        if pin is None:
            pin = Pin(
                filename=f.filename,
                sha256=sha256,
                version=version,
                size=f.size,
                upstream_url=f.url,
                metadata_sha256=_metadata_sha256(f),
                upload_time=parse_utc(f.upload_time),
                provenance_url=f.provenance,
            )
            built.new_pins.append(pin)
        elif pin.sha256 != sha256:
            built.changed.append(ChangedFile(f.filename, sha256))
            continue
        if pin.blocked_reason:
            continue
        if hidden and version is not None and canonicalize_version(version) in hidden:
            continue
        kept.append(_rewrite(f, pin, files_base, derive_metadata_from))
    listed = {f.filename for f in upstream.files}
    built.removed = sorted(name for name, pin in pins.items() if name not in listed and not pin.removed)
    built.relisted = sorted(name for name, pin in pins.items() if name in listed and pin.removed)
    versions = tuple(v for v in upstream.versions if canonicalize_version(v) not in hidden) if hidden else upstream.versions
    built.page = replace(upstream, files=tuple(kept), versions=versions)
    return built


def _rewrite(f: DistFile, pin: Pin, files_base: str, derive_metadata_from: int | None) -> DistFile:
    # Core metadata with its pinned hash; else, for a wheel, the mirror's own copy read out of
    # the verified wheel (mirror.serving.file_service.FileService.derived_metadata_target).
    core: bool | Mapping[str, str] = False
    if pin.metadata_sha256:
        core = {"sha256": pin.metadata_sha256}
    elif derives_metadata(f.filename, f.size, derive_metadata_from):
        core = True
    # PEP 740: point at the mirror's copy of the provenance, never at upstream.
    provenance = mirror_file_url(pin.sha256, f.filename + PROVENANCE_SUFFIX, files_base) if pin.provenance_url else None
    return DistFile(  # not dataclasses.replace: a big page is tens of thousands of these
        filename=f.filename,
        url=mirror_file_url(pin.sha256, f.filename, files_base),
        hashes={"sha256": pin.sha256},
        requires_python=f.requires_python,
        yanked=f.yanked,
        size=f.size,
        upload_time=f.upload_time,
        core_metadata=core,
        gpg_sig=None,
        provenance=provenance,
        parsed_version=f.parsed_version,
    )


def _metadata_sha256(f: DistFile) -> str | None:
    if f.core_metadata is not True and f.core_metadata is not False:  # a Mapping (no ABC check per entry)
        value = f.core_metadata.get("sha256")
        return value.lower() if value else None
    return None

