"""Build real, installable distributions for tests, in-process and fast.

Every mirror test needs wheels and sdists that pip and uv accept, and many
need hundreds of them.  Running a build backend in a subprocess costs about a
second per distribution, so these builders write the archives directly with
the standard library.  Core metadata is validated and written by
``packaging.metadata``, so bad input fails here, loudly, instead of producing
a distribution that some installer rejects three layers further on.

Archives are deterministic: the same arguments give the same bytes, hence the
same sha256.  Tests can therefore compare hashes across builds and runs.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import random
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.metadata import Metadata, RawMetadata
from packaging.tags import parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = [
    "build_large_wheel",
    "build_sdist",
    "build_wheel",
    "import_name",
    "parse_dist_filename",
    "sdist_metadata",
    "wheel_metadata",
]

# A fixed timestamp keeps archives byte-for-byte reproducible.  Zip cannot
# represent dates before 1980.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_TAR_MTIME = 1577836800  # the same instant, 2020-01-01T00:00:00Z
_CHUNK = 1 << 20
_GENERATOR = "indexguard-test-support (1.0)"


def import_name(name: str) -> str:
    """The top-level module a built distribution ships.

    Derived from the canonical name so that every spelling of a project
    ("Foo.Bar", "foo-bar") installs the same importable module.
    """
    return canonicalize_name(name).replace("-", "_")


def build_wheel(
    dest_dir: str | os.PathLike[str],
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    summary: str = "",
    author: str | None = None,
    author_email: str | None = None,
    description: str = "",
    extra_metadata: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
    tag: str = "py3-none-any",
) -> Path:
    """Write a wheel that pip and uv install, and return its path.

    ``files`` adds archive members (POSIX paths relative to the wheel root);
    giving ``"<import_name>/__init__.py"`` replaces the default module.
    ``extra_metadata`` takes further core-metadata fields by their
    ``packaging.metadata.RawMetadata`` keys (``classifiers``,
    ``project_urls``, ``maintainer_email`` ...).
    """
    metadata = _core_metadata(
        "2.1",
        name,
        version,
        requires_python=requires_python,
        requires_dist=requires_dist,
        summary=summary,
        author=author,
        author_email=author_email,
        description=description,
        extra_metadata=extra_metadata,
    )
    members = _module_members(name, metadata.version, files)
    return _write_wheel(Path(dest_dir), metadata, tag, members)


def build_large_wheel(
    dest_dir: str | os.PathLike[str],
    name: str,
    version: str,
    *,
    size_mib: float,
    seed: int = 0,
    requires_python: str | None = None,
    summary: str = "",
    tag: str = "py3-none-any",
) -> Path:
    """Write a wheel padded with ``size_mib`` MiB of incompressible data.

    For memory and throughput tests: the padding is generated and written in
    1 MiB chunks, so building a multi-gigabyte wheel needs no more memory than
    building a small one.  ``seed`` makes the padding (and so the hash)
    reproducible; change it to get a different file of the same size.
    """
    if not size_mib > 0:
        raise ValueError(f"size_mib must be positive, got {size_mib!r}")
    metadata = _core_metadata(
        "2.1",
        name,
        version,
        requires_python=requires_python,
        summary=summary,
    )
    members = _module_members(name, metadata.version, None)
    padding_path = f"{import_name(name)}/_padding.bin"
    members.append((padding_path, _random_chunks(int(size_mib * _CHUNK), seed), False))
    return _write_wheel(Path(dest_dir), metadata, tag, members)


def build_sdist(
    dest_dir: str | os.PathLike[str],
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    summary: str = "",
    author: str | None = None,
    author_email: str | None = None,
    description: str = "",
    extra_metadata: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a ``.tar.gz`` source distribution and return its path.

    It holds PKG-INFO, a setuptools ``pyproject.toml`` and the module, so a
    frontend can prepare its metadata and build it.  That needs setuptools
    from an index or, with ``--no-build-isolation``, from the environment.
    """
    metadata = _core_metadata(
        "2.2",
        name,
        version,
        requires_python=requires_python,
        requires_dist=requires_dist,
        summary=summary,
        author=author,
        author_email=author_email,
        description=description,
        extra_metadata=extra_metadata,
    )
    stem = f"{_filename_name(name)}-{metadata.version}"
    pkg_info = _rfc822(metadata)
    pyproject = _pyproject_toml(metadata, author, author_email)
    contents = {"PKG-INFO": pkg_info, "pyproject.toml": pyproject}
    # Supplied files come last so a test can replace even PKG-INFO.
    contents.update((path, b"".join(chunks)) for path, chunks, _ in _module_members(name, metadata.version, files))
    members = list(contents.items())
    dest = Path(dest_dir)
    with _atomic_output(dest / f"{stem}.tar.gz") as out:
        with (
            gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(_tar_info(stem, 0, directory=True))
            for directory in _parent_dirs(path for path, _ in members):
                tar.addfile(_tar_info(f"{stem}/{directory}", 0, directory=True))
            for path, data in members:
                tar.addfile(_tar_info(f"{stem}/{path}", len(data)), io.BytesIO(data))
    return dest / f"{stem}.tar.gz"


def wheel_metadata(path: str | os.PathLike[str]) -> bytes:
    """Return a wheel's ``.dist-info/METADATA`` bytes, exactly as archived.

    These are the bytes an index serves as the PEP 658 ``.metadata`` file, so
    their sha256 is the one the index must advertise.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            candidates = [
                n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)
            ]
            chosen = _pick_dist_info(path.name, candidates)
            return archive.read(chosen)
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        raise ValueError(f"cannot read core metadata from {path}: {exc}") from exc


def sdist_metadata(path: str | os.PathLike[str]) -> bytes:
    """Return an sdist's top-level ``PKG-INFO`` bytes (``.tar.gz`` or ``.zip``)."""
    path = Path(path)
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+/PKG-INFO", n)]
                if len(names) != 1:
                    raise ValueError(f"expected one top-level PKG-INFO, found {len(names)}")
                return archive.read(names[0])
        with tarfile.open(path, mode="r:*") as archive:
            members = [
                m for m in archive.getmembers() if m.isfile() and re.fullmatch(r"[^/]+/PKG-INFO", m.name)
            ]
            if len(members) != 1:
                raise ValueError(f"expected one top-level PKG-INFO, found {len(members)}")
            handle = archive.extractfile(members[0])
            assert handle is not None  # isfile() members always have data
            return handle.read()
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"cannot read PKG-INFO from {path}: {exc}") from exc


# -- core metadata -----------------------------------------------------------


def _core_metadata(
    metadata_version: str,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    summary: str = "",
    author: str | None = None,
    author_email: str | None = None,
    description: str = "",
    extra_metadata: Mapping[str, Any] | None = None,
) -> Metadata:
    """Validate the inputs as core metadata, so bad input fails here, early."""
    if isinstance(requires_dist, str):
        raise TypeError("requires_dist must be a sequence of requirement strings, not a str")
    try:
        normalized_version = str(Version(version))
    except InvalidVersion as exc:
        raise ValueError(f"invalid version {version!r} for {name!r}: {exc}") from exc
    raw: dict[str, Any] = {"metadata_version": metadata_version, "name": name, "version": normalized_version}
    optional = {
        "summary": summary,
        "author": author,
        "author_email": author_email,
        "requires_python": requires_python,
        "requires_dist": list(requires_dist),
        "description": description,
    }
    raw.update({key: value for key, value in optional.items() if value})
    raw.update(extra_metadata or {})
    try:
        return Metadata.from_raw(RawMetadata(**raw), validate=True)  # type: ignore[typeddict-item]
    except ExceptionGroup as group:
        problems = "; ".join(str(exc) for exc in group.exceptions)
        raise ValueError(f"invalid core metadata for {name!r} {version!r}: {problems}") from group


def _rfc822(metadata: Metadata) -> bytes:
    """Core metadata bytes with header names spelled as build tools write them.

    Header names are case-insensitive by the spec, but some tools (twine's
    metadata reader among them) only recognise the usual spelling.
    """
    message = metadata.as_rfc822()
    lines = []
    body = message.as_bytes().split(b"\n\n", 1)
    for line in body[0].split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep and not line[:1].isspace():
            line = b"-".join(part.capitalize() for part in name.split(b"-")) + sep + value
        lines.append(line)
    return b"\n".join(lines) + (b"\n\n" + body[1] if len(body) > 1 else b"")


def _pyproject_toml(metadata: Metadata, author: str | None, author_email: str | None) -> bytes:
    """A pyproject.toml whose static fields agree with PKG-INFO.

    Only a bare address goes into ``authors``: setuptools validates e-mail
    syntax, and a display-name form would make the sdist unbuildable.
    """
    q = _toml_string
    lines = [
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {q(str(metadata.name))}",
        f"version = {q(str(metadata.version))}",
    ]
    if metadata.summary:
        lines.append(f"description = {q(metadata.summary)}")
    if metadata.requires_python is not None:
        lines.append(f"requires-python = {q(str(metadata.requires_python))}")
    dependencies = ", ".join(q(str(req)) for req in metadata.requires_dist or ())
    lines.append(f"dependencies = [{dependencies}]")
    person = {}
    if author:
        person["name"] = author
    if author_email and re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", author_email):
        person["email"] = author_email
    if person:
        fields = ", ".join(f"{key} = {q(value)}" for key, value in person.items())
        lines.append(f"authors = [{{{fields}}}]")
    lines += ["", "[tool.setuptools]", f"packages = [{q(import_name(str(metadata.name)))}]", ""]
    return "\n".join(lines).encode("utf-8")


def _toml_string(value: str) -> str:
    """A TOML basic string; JSON escapes are valid TOML escapes.

    ``ensure_ascii=False`` keeps astral characters literal, because TOML
    rejects the surrogate-pair escapes JSON would otherwise use.
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control characters are not allowed in {value!r}")
    return json.dumps(value, ensure_ascii=False)


# -- archive writing ---------------------------------------------------------

# (archive path, content chunks, compress?)
_Member = tuple[str, Iterable[bytes], bool]


def _module_members(name: str, version: Version | str, files: Mapping[str, bytes] | None) -> list[_Member]:
    module = import_name(name)
    contents: dict[str, bytes] = {f"{module}/__init__.py": f"__version__ = {str(version)!r}\n".encode()}
    for path, data in (files or {}).items():
        contents[_check_member_path(path)] = _check_bytes(path, data)
    return [(path, [data], True) for path, data in contents.items()]


def _check_member_path(path: str) -> str:
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"archive member path must be relative and normalised, got {path!r}")
    if pure.parts[0].endswith(".dist-info"):
        raise ValueError(f"{path!r}: the .dist-info directory is generated, not supplied")
    return path


def _check_bytes(path: str, data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"contents of {path!r} must be bytes, got {type(data).__name__}")
    return bytes(data)


def _write_wheel(dest_dir: Path, metadata: Metadata, tag: str, members: list[_Member]) -> Path:
    try:
        tags = parse_tag(tag)
    except ValueError as exc:
        raise ValueError(f"invalid wheel tag {tag!r}: expected python-abi-platform") from exc
    version = str(metadata.version)
    stem = f"{_filename_name(str(metadata.name))}-{version}"
    filename = f"{stem}-{tag}.whl"
    _check_wheel_filename(filename, str(metadata.name), version)
    dist_info = f"{stem}.dist-info"
    purelib = all(t.platform == "any" for t in tags)
    wheel_file = "".join(
        [
            "Wheel-Version: 1.0\n",
            f"Generator: {_GENERATOR}\n",
            f"Root-Is-Purelib: {'true' if purelib else 'false'}\n",
            *(f"Tag: {t}\n" for t in sorted(tags, key=str)),
        ]
    ).encode()
    members = [
        *members,
        (f"{dist_info}/METADATA", [_rfc822(metadata)], True),
        (f"{dist_info}/WHEEL", [wheel_file], True),
    ]
    records: list[tuple[str, str, str]] = []
    with _atomic_output(dest_dir / filename) as out, zipfile.ZipFile(out, mode="w") as archive:
        for path, chunks, compress in members:
            digest, size = _write_member(archive, path, chunks, compress)
            records.append((path, f"sha256={_record_hash(digest)}", str(size)))
        records.append((f"{dist_info}/RECORD", "", ""))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(records)
        _write_member(archive, f"{dist_info}/RECORD", [text.getvalue().encode()], True)
    return dest_dir / filename


def _write_member(archive: zipfile.ZipFile, path: str, chunks: Iterable[bytes], compress: bool) -> tuple[bytes, int]:
    """Stream one member into the archive, hashing it on the way through."""
    info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    digest = hashlib.sha256()
    size = 0
    with archive.open(info, mode="w", force_zip64=True) as member:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    return digest.digest(), size


def _record_hash(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _random_chunks(total: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    remaining = total
    while remaining > 0:
        size = min(_CHUNK, remaining)
        yield rng.randbytes(size)
        remaining -= size


def _tar_info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = _TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


def _parent_dirs(paths: Iterable[str]) -> list[str]:
    dirs = {str(parent) for path in paths for parent in PurePosixPath(path).parents if str(parent) != "."}
    return sorted(dirs)


@contextmanager
def _atomic_output(target: Path) -> Iterator[Any]:
    """Write to a temporary sibling and rename, so no half-written file is seen."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


# -- names -------------------------------------------------------------------


def _filename_name(name: str) -> str:
    """The project name as spelled in wheel and sdist file names."""
    return canonicalize_name(name).replace("-", "_")


def _check_wheel_filename(filename: str, name: str, version: str) -> None:
    """Refuse to write a file whose name packaging would not parse back."""
    try:
        parsed_name, parsed_version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise ValueError(f"cannot build a valid wheel file name for {name!r} {version!r}: {exc}") from exc
    if parsed_name != canonicalize_name(name) or parsed_version != Version(version):
        raise ValueError(f"wheel file name {filename!r} does not round-trip to {name!r} {version!r}")


def _pick_dist_info(filename: str, candidates: list[str]) -> str:
    """Choose the METADATA of the distribution named by the file, not a vendored one."""
    if not candidates:
        raise ValueError("no .dist-info/METADATA in archive")
    if len(candidates) == 1:
        return candidates[0]
    try:
        project: NormalizedName = parse_wheel_filename(filename)[0]
    except InvalidWheelFilename:
        raise ValueError(f"several .dist-info directories and an unparsable file name: {candidates}") from None
    for candidate in candidates:
        stem = candidate.split("/", 1)[0].removesuffix(".dist-info")
        if canonicalize_name(stem.rpartition("-")[0]) == project:
            return candidate
    raise ValueError(f"no .dist-info directory for {project!r} among {candidates}")


def parse_dist_filename(filename: str) -> tuple[NormalizedName, Version, str]:
    """Name, version and package type of a wheel or sdist file name.

    Raises ValueError for anything else, so callers can skip stray files.
    """
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version, "bdist_wheel"
        name, version = parse_sdist_filename(filename)
        return name, version, "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise ValueError(str(exc)) from exc
