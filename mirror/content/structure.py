"""Structure of a distribution: what the archive claims about itself.

Cheap checks on every file, before any content rule: a wheel whose RECORD
does not vouch for exactly its own bytes, a member that would land outside
the install directory, a link, or core metadata naming another project or
version than the file name are signs of tampering or of an installer attack,
and none needs the content to be understood.  Parsing of names, versions and
metadata is left to ``packaging`` so that we judge files exactly as the
installers do.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from detectors.findings import Finding, Severity
from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from mirror.content.archive import Entry
from mirror.content.evidence import excerpt, finding

__all__ = ["DistInfo", "check_paths", "check_sdist", "check_wheel", "record_digest", "unsafe_path"]

_SIGNATURE_FILES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class DistInfo:
    """What the structure check learned about the artifact, for later checks."""

    name: str  # canonical project name from the file name
    version: str
    pure: bool  # a py*-none-any wheel (an sdist counts as not pure: it may build anything)
    meta_dir: str | None  # "<name>-<version>.dist-info" of a wheel, or the sdist root


def unsafe_path(path: str) -> str | None:
    """Why a member path would escape the install/extract directory, or None."""
    if "\x00" in path:
        return "NUL byte in path"
    normal = path.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return "absolute path"
    if any(part == ".." for part in normal.split("/")):
        return "'..' component"
    return None


def _f(severity: Severity, rule: str, title: str, file: str | None, quote: str, release: str | None) -> Finding:
    return finding(f"content.{rule}", severity, title, file=file, rule=rule, quote=quote, release=release)


def check_paths(entries: Iterable[Entry], *, release: str | None, allow_internal_links: bool = False) -> list[Finding]:
    """Absolute or '..' paths, duplicates, links and special files."""
    findings: list[Finding] = []
    entries = list(entries)
    for entry in entries:
        why = unsafe_path(entry.path)
        if why:
            findings.append(
                _f(Severity.CRITICAL, "unsafe-path", f"archive member with {why}", entry.path, excerpt(entry.path), release)
            )
        if entry.kind in ("symlink", "hardlink"):
            target = entry.link_target or ""
            if entry.kind == "symlink":
                absolute = target.replace("\\", "/").startswith("/") or bool(re.match(r"^[A-Za-z]:", target))
                escapes = absolute or _resolve(entry.path, target).startswith("../")
            else:  # a tar hard link names another member of the archive
                escapes = bool(unsafe_path(target))
            if escapes or not allow_internal_links:
                findings.append(
                    _f(
                        Severity.CRITICAL, "link",
                        f"archive member is a {entry.kind}" + (f" to {target!r}" if target else ""),
                        entry.path, excerpt(target or entry.path), release,
                    )
                )
        elif entry.kind == "other":
            findings.append(_f(Severity.HIGH, "special-file", "archive member is a device, FIFO or other special file",
                               entry.path, excerpt(entry.path), release))
    counts = Counter(e.path.replace("\\", "/").rstrip("/") for e in entries if e.kind != "dir")
    for path, count in sorted(counts.items()):
        if count > 1:
            findings.append(_f(Severity.CRITICAL, "duplicate-member", f"{count} archive members share this name",
                               path, excerpt(path), release))
    return findings


def _resolve(path: str, target: str) -> str:
    """The archive-relative path a symlink points to ('..' kept when it escapes)."""
    parts: list[str] = []
    for part in (str(PurePosixPath(path).parent) + "/" + target).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return "../" + target
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _metadata_findings(raw_bytes: bytes | None, where: str, name: str, version: str, release: str | None) -> list[Finding]:
    if raw_bytes is None:
        return [_f(Severity.HIGH, "metadata-missing", "core metadata file is missing", where, "", release)]
    raw, _unparsed = parse_email(raw_bytes)
    findings: list[Finding] = []
    meta_name = raw.get("name")
    meta_version = raw.get("version")
    if not meta_name or canonicalize_name(meta_name) != name:
        findings.append(_f(Severity.CRITICAL, "metadata-name", f"core metadata names project {meta_name!r}, the file name {name!r}",
                           where, excerpt(str(meta_name)), release))
    try:
        same = meta_version is not None and Version(meta_version) == Version(version)
    except InvalidVersion:
        same = False
    if not same:
        findings.append(_f(Severity.CRITICAL, "metadata-version",
                           f"core metadata says version {meta_version!r}, the file name {version!r}",
                           where, excerpt(str(meta_version)), release))
    return findings


def check_wheel(
    filename: str, entries: list[Entry], digests: Mapping[str, str], special: Mapping[str, bytes], *, release: str | None
) -> tuple[list[Finding], DistInfo | None]:
    """RECORD, paths, links and METADATA of a wheel.

    ``digests`` maps every regular member's path to its RECORD-style
    ``sha256=...`` digest; ``special`` holds the bytes of the wheel's
    ``*.dist-info/*`` members.
    """
    findings = check_paths(entries, release=release)
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        return findings + [_f(Severity.HIGH, "filename", f"invalid wheel file name: {exc}", filename, excerpt(filename), release)], None
    version_text = str(version)
    pure = all(t.platform == "any" and t.abi == "none" for t in tags)
    dist_dirs = sorted({e.path.split("/", 1)[0] for e in entries if re.match(r"^[^/]+\.dist-info/", e.path)})
    if len(dist_dirs) != 1:
        findings.append(_f(Severity.HIGH, "dist-info", f"wheel has {len(dist_dirs)} .dist-info directories",
                           filename, excerpt(", ".join(dist_dirs)), release))
        meta_dir = None
    else:
        meta_dir = dist_dirs[0]
        dir_name, _, dir_version = meta_dir[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(dir_name) != name or canonicalize_version(dir_version) != canonicalize_version(version):
            findings.append(_f(Severity.HIGH, "dist-info", "the .dist-info directory names another project or version",
                               meta_dir, excerpt(meta_dir), release))
    info = DistInfo(name=name, version=version_text, pure=pure, meta_dir=meta_dir)
    if meta_dir is None:
        return findings, info
    findings += _metadata_findings(special.get(f"{meta_dir}/METADATA"), f"{meta_dir}/METADATA", name, version_text, release)
    findings += _record_findings(meta_dir, entries, digests, special.get(f"{meta_dir}/RECORD"), release)
    return findings, info


def _record_findings(
    meta_dir: str, entries: list[Entry], digests: Mapping[str, str], record: bytes | None, release: str | None
) -> list[Finding]:
    record_path = f"{meta_dir}/RECORD"
    if record is None:
        return [_f(Severity.CRITICAL, "record", "wheel has no RECORD", record_path, "", release)]
    findings: list[Finding] = []
    listed: dict[str, str] = {}
    try:
        rows = list(csv.reader(io.StringIO(record.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        return [_f(Severity.CRITICAL, "record", f"RECORD cannot be parsed: {exc}", record_path, excerpt(record), release)]
    for row in rows:
        if not row:
            continue
        path = row[0]
        if path in listed:
            findings.append(_f(Severity.CRITICAL, "record", "RECORD lists this path twice", path, excerpt(path), release))
        listed[path] = row[1] if len(row) > 1 else ""
        why = unsafe_path(path)
        if why:
            findings.append(_f(Severity.CRITICAL, "unsafe-path", f"RECORD lists a path with {why}", path, excerpt(path), release))
    exempt = {record_path} | {f"{meta_dir}/{s}" for s in _SIGNATURE_FILES}
    for entry in entries:
        if entry.kind != "file" or entry.path in exempt:
            continue
        expected = listed.get(entry.path)
        actual = digests.get(entry.path, "")
        if expected is None:
            findings.append(_f(Severity.CRITICAL, "record", "file is not listed in RECORD", entry.path, excerpt(entry.path), release))
        elif not expected.startswith("sha256="):
            findings.append(_f(Severity.CRITICAL, "record", "RECORD lists no sha256 for this file", entry.path,
                               excerpt(expected or "(empty)"), release))
        elif expected != actual:
            findings.append(_f(Severity.CRITICAL, "record", "file does not match its RECORD hash", entry.path,
                               excerpt(f"RECORD {expected} != actual {actual}"), release))
    present = {e.path for e in entries if e.kind == "file"}
    for path in sorted(set(listed) - present - exempt):
        findings.append(_f(Severity.HIGH, "record", "RECORD lists a file the wheel does not contain", path, excerpt(path), release))
    return findings


def check_sdist(
    filename: str, entries: list[Entry], special: Mapping[str, bytes], *, release: str | None
) -> tuple[list[Finding], DistInfo | None]:
    """Paths, links, a single root directory and PKG-INFO of an sdist."""
    findings = check_paths(entries, release=release, allow_internal_links=True)
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion) as exc:
        return findings + [_f(Severity.HIGH, "filename", f"invalid sdist file name: {exc}", filename, excerpt(filename), release)], None
    roots = sorted({e.path.replace("\\", "/").removeprefix("./").split("/", 1)[0] for e in entries if e.path.strip("./")})
    root = roots[0] if len(roots) == 1 else None
    if root is None:
        findings.append(_f(Severity.MEDIUM, "sdist-root", f"sdist has {len(roots)} top-level entries, not one directory",
                           filename, excerpt(", ".join(roots[:5])), release))
    info = DistInfo(name=name, version=str(version), pure=False, meta_dir=root)
    if root is not None:
        findings += _metadata_findings(special.get(f"{root}/PKG-INFO"), f"{root}/PKG-INFO", name, str(version), release)
    return findings, info


def record_digest(data: bytes, digest: bytes | None = None) -> str:
    """RECORD's spelling of a sha256 digest (``sha256=`` + urlsafe base64, unpadded).

    ``digest``: the sha256 of ``data`` when the caller already has it (a member is hashed once).
    """
    raw = digest if digest is not None else hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
