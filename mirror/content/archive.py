"""Walk the members of a wheel or sdist in memory, within explicit bounds.

Nothing is ever extracted to disk.  Each member is read in chunks while its
bytes are counted, because a zip header's declared size is a claim made by
the attacker: both the claim and the bytes actually produced are checked
against the limits, and so is the declared compression ratio (a bomb is
refused before it is inflated).  Any limit that is hit, and any archive that
cannot be read, raises ``ScanIncomplete``: the caller turns it into a
finding, so a scan that could not finish never passes silently.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mirror.content.config import ScanConfig

__all__ = ["Budget", "Entry", "Member", "ScanIncomplete", "artifact_kind", "iter_members"]

_CHUNK = 1 << 20


class ScanIncomplete(Exception):
    """The scan stopped before it saw every byte; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str, path: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.path = path


@dataclass
class Budget:
    """What one release scan may still spend (bytes read, time).

    Shared by all artifacts of a release so that the limits bound the
    release, not each file; ``clock`` is injected for tests.
    """

    config: ScanConfig
    clock: Callable[[], float] = time.monotonic
    read_bytes: int = 0
    started: float = field(default=-1.0)
    # Called between members; a background scan waits there while a client waits for another
    # scan.  The time spent there is not scan time (it never counts against ``max_seconds``).
    pause: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def between_members(self, path: str | None) -> None:
        if self.pause is not None:
            before = self.clock()
            self.pause()
            self.started += self.clock() - before
        self.check_time(path)

    def spend(self, count: int, path: str | None) -> None:
        self.read_bytes += count
        if self.read_bytes > self.config.max_total_bytes:
            raise ScanIncomplete(
                "total-bytes", f"more than {self.config.max_total_bytes} decompressed bytes", path
            )
        self.check_time(path)

    def check_time(self, path: str | None) -> None:
        if self.clock() - self.started > self.config.max_seconds:
            raise ScanIncomplete("time", f"scan took longer than {self.config.max_seconds:g} s", path)

    @property
    def seconds(self) -> float:
        return self.clock() - self.started


@dataclass(frozen=True)
class Entry:
    """One archive entry as the archive describes it (nothing resolved yet)."""

    path: str
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    size: int
    mode: int | None = None
    link_target: str | None = None


@dataclass(frozen=True)
class Member:
    """An entry and, for regular files, its bytes.

    A zip member larger than the ``head_bytes`` asked for comes as its head
    (``data``) and ``rest``, the remaining bytes chunk by chunk, so that a
    caller that only needs the head (a native library: hash the rest, keep
    nothing) never holds the whole member.  ``rest`` must be read before
    the next member is asked for; whatever is left is read then anyway, so
    the size, CRC and budget checks always run.
    """

    entry: Entry
    data: bytes | None
    rest: Iterator[bytes] | None = None


def artifact_kind(filename: str) -> str:
    """'wheel', 'sdist-tar' or 'sdist-zip' from a distribution file name."""
    lower = filename.lower()
    if lower.endswith(".whl"):
        return "wheel"
    if lower.endswith((".tar.gz", ".tgz")):
        return "sdist-tar"
    if lower.endswith(".zip"):
        return "sdist-zip"
    raise ScanIncomplete("unknown-format", f"not a wheel or sdist: {filename}")


def iter_members(
    source: bytes | os.PathLike[str] | str, filename: str, budget: Budget, *, head_bytes: int | None = None
) -> Iterator[Member]:
    """Yield every entry of the archive in stored order, with its bytes.

    ``source`` is the artifact's bytes or a path to it.  With
    ``head_bytes``, a zip member larger than that comes as head and rest
    (see ``Member``).  Raises ``ScanIncomplete`` as soon as a limit is hit
    or the archive is damaged, also while ``rest`` is read.
    """
    config = budget.config
    size = len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size
    if size > config.max_archive_bytes:
        raise ScanIncomplete("archive-bytes", f"artifact is {size} bytes (limit {config.max_archive_bytes})")
    kind = artifact_kind(filename)
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else None
    if kind == "sdist-tar":
        yield from _iter_tar(stream if stream is not None else Path(source), budget)
    else:
        yield from _iter_zip(stream if stream is not None else Path(source), budget, head_bytes)


def _read_bounded(handle: io.BufferedIOBase, declared: int, path: str, budget: Budget) -> bytes:
    return b"".join(_chunks(handle, declared, path, budget))


def _chunks(handle: io.BufferedIOBase, declared: int, path: str, budget: Budget, skip: int = 0) -> Iterator[bytes]:
    """The member's bytes a MiB at a time (``skip``: already read), each counted against the limits."""
    config = budget.config
    limit = min(config.max_member_bytes, declared)
    got = skip
    while True:
        chunk = handle.read(min(_CHUNK, limit + 1 - got))
        if not chunk:
            break
        got += len(chunk)
        budget.spend(len(chunk), path)
        if got > limit:
            if got > config.max_member_bytes:
                raise ScanIncomplete("member-bytes", f"member larger than {config.max_member_bytes} bytes", path)
            raise ScanIncomplete("size-mismatch", f"member yields more bytes than the declared {declared}", path)
        yield chunk
    if got != declared:
        raise ScanIncomplete("size-mismatch", f"member declared {declared} bytes but holds {got}", path)


def _unreadable_as_incomplete(chunks: Iterator[bytes], path: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except ScanIncomplete:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ScanIncomplete("unreadable", f"cannot read member: {exc}", path) from None


def _iter_zip(source: io.BytesIO | Path, budget: Budget, head_bytes: int | None = None) -> Iterator[Member]:
    config = budget.config
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ScanIncomplete("unreadable", f"not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > config.max_members:
            raise ScanIncomplete("member-count", f"{len(infos)} members (limit {config.max_members})")
        for info in infos:
            budget.between_members(info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                yield Member(Entry(info.filename, "symlink", info.file_size, mode), None)
                continue
            if info.is_dir():
                yield Member(Entry(info.filename, "dir", 0, mode or None), None)
                continue
            if info.file_size > config.max_member_bytes:
                raise ScanIncomplete(
                    "member-bytes", f"member declares {info.file_size} bytes (limit {config.max_member_bytes})",
                    info.filename,
                )
            if info.file_size > _CHUNK and info.file_size / max(info.compress_size, 1) > config.max_ratio:
                raise ScanIncomplete(
                    "compression-ratio",
                    f"member inflates {info.compress_size} to {info.file_size} bytes (ratio limit {config.max_ratio:g})",
                    info.filename,
                )
            entry = Entry(info.filename, "file", info.file_size, mode or None)
            if head_bytes is not None and info.file_size > head_bytes:
                yield from _head_and_rest(archive, info, entry, head_bytes, budget)
                continue
            try:
                with archive.open(info) as handle:
                    data = _read_bounded(handle, info.file_size, info.filename, budget)
            except ScanIncomplete:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                raise ScanIncomplete("unreadable", f"cannot read member: {exc}", info.filename) from None
            yield Member(entry, data)


def _head_and_rest(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Entry, head_bytes: int, budget: Budget
) -> Iterator[Member]:
    path = info.filename
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(archive.open(info))
            head = handle.read(head_bytes)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ScanIncomplete("unreadable", f"cannot read member: {exc}", path) from None
        budget.spend(len(head), path)
        rest = _unreadable_as_incomplete(_chunks(handle, info.file_size, path, budget, skip=len(head)), path)
        yield Member(entry, head, rest)
        for _ in rest:  # what the caller left: read now, so that no check is skipped
            pass


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "other"


def _iter_tar(source: io.BytesIO | Path, budget: Budget) -> Iterator[Member]:
    config = budget.config
    count = 0
    try:
        if isinstance(source, Path):
            archive = tarfile.open(source, mode="r|*")
        else:
            archive = tarfile.open(fileobj=source, mode="r|*")
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ScanIncomplete("unreadable", f"not a readable tar archive: {exc}") from None
    try:
        with archive:
            while True:
                try:
                    member = archive.next()
                except (tarfile.TarError, OSError, EOFError, ValueError, Exception) as exc:  # zlib.error too
                    raise ScanIncomplete("unreadable", f"damaged tar archive: {exc}") from None
                if member is None:
                    break
                count += 1
                if count > config.max_members:
                    raise ScanIncomplete("member-count", f"more than {config.max_members} members")
                budget.between_members(member.name)
                kind = _tar_kind(member)
                if kind != "file":
                    link = member.linkname if kind in ("symlink", "hardlink") else None
                    yield Member(Entry(member.name, kind, member.size, member.mode, link), None)
                    continue
                if member.size > config.max_member_bytes:
                    raise ScanIncomplete(
                        "member-bytes", f"member declares {member.size} bytes (limit {config.max_member_bytes})",
                        member.name,
                    )
                try:
                    handle = archive.extractfile(member)
                    if handle is None:  # pragma: no cover - regular members always have data
                        raise ScanIncomplete("unreadable", "member has no data", member.name)
                    data = _read_bounded(handle, member.size, member.name, budget)
                except ScanIncomplete:
                    raise
                except Exception as exc:  # tarfile.ReadError, zlib.error, EOFError ...
                    raise ScanIncomplete("unreadable", f"cannot read member: {exc}", member.name) from None
                yield Member(Entry(member.name, "file", member.size, member.mode), data)
    except ScanIncomplete:
        raise
    except Exception as exc:
        raise ScanIncomplete("unreadable", f"damaged tar archive: {exc}") from None
