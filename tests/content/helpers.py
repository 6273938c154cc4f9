"""Small builders for hand-made (and deliberately broken) archives.

Real, valid distributions come from ``tests.support.dists``; these helpers
write what no honest build tool would: members missing from RECORD, '..'
paths, symlinks, duplicate names.  Every "malicious" payload in these tests
only prints, and no test ever imports, installs or runs one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mirror.content import Artifact, ScanConfig, scan_release

from tests.support.dists import build_sdist, build_wheel

HARMLESS = b'print("harmless test payload")\n'


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def raw_wheel(
    name: str = "demo", version: str = "1.0", files: Mapping[str, bytes] | None = None, *,
    extra_members: Sequence[tuple[str, bytes]] = (), record_extra: Sequence[str] = (),
    unlisted: Sequence[str] = (), symlinks: Mapping[str, str] | None = None, metadata_name: str | None = None,
    metadata_version: str | None = None,
) -> tuple[str, bytes]:
    """(filename, bytes) of a wheel written member by member, RECORD included unless told otherwise."""
    dist = f"{name}-{version}.dist-info"
    members = dict(files or {f"{name}/__init__.py": b"VALUE = 1\n"})
    members[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {metadata_name or name}\nVersion: {metadata_version or version}\n\n".encode()
    )
    members[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
    lines = [record_line(p, d) for p, d in members.items() if p not in unlisted]
    lines += list(record_extra) + [f"{dist}/RECORD,,"]
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some tests
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, data in members.items():
                archive.writestr(path, data)
            for path, data in extra_members:
                archive.writestr(path, data)
            for path, target in (symlinks or {}).items():
                info = zipfile.ZipInfo(path)
                info.external_attr = (0o120777 << 16)
                archive.writestr(info, target)
            archive.writestr(f"{dist}/RECORD", "\n".join(lines) + "\n")
    return f"{name}-{version}-py3-none-any.whl", out.getvalue()


def raw_sdist(name: str = "demo", version: str = "1.0", files: Mapping[str, bytes] | None = None, *,
              symlinks: Mapping[str, str] | None = None) -> tuple[str, bytes]:
    """(filename, bytes) of a .tar.gz sdist, PKG-INFO included; paths are taken verbatim."""
    root = f"{name}-{version}"
    members = {f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()}
    members.update(files or {f"{root}/{name}/__init__.py": b"VALUE = 1\n"})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for path, target in (symlinks or {}).items():
            info = tarfile.TarInfo(path)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return f"{name}-{version}.tar.gz", out.getvalue()


def wheel(tmp: Path, name: str, version: str, files: Mapping[str, bytes] | None = None, **kw: object) -> Artifact:
    """A real wheel from tests.support.dists, as an Artifact (provenance unknown)."""
    path = build_wheel(tmp, name, version, files=files, **kw)  # type: ignore[arg-type]
    return Artifact(path.name, path, provenance_known=False)


def sdist(tmp: Path, name: str, version: str, files: Mapping[str, bytes] | None = None) -> Artifact:
    path = build_sdist(tmp, name, version, files=files)
    return Artifact(path.name, path, provenance_known=False)


def detectors(report: object) -> set[str]:
    return {f.detector for f in report.findings}  # type: ignore[attr-defined]


def scan(*artifacts: Artifact, previous: object = None, config: ScanConfig | None = None):  # noqa: ANN201
    return scan_release(list(artifacts), previous, config)  # type: ignore[arg-type]
