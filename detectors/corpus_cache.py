"""A built corpus kept in a file, named by a hash of everything it was built from.

Building the popular corpus costs about a second of CPU; reading its packed
form (``detectors.packed``) back from a memory-mapped file costs a few
milliseconds, and every process that maps the same file shares its pages.
The caller chooses the directory (the server's storage, a user cache
directory, or none): this module only reads and writes where it is told.

A file is trusted only when its name and its header carry the fingerprint
of the inputs - the popular list, the curated names, the aliases, the
vocabulary, the index options and the source of the code that builds and
reads the index - and its payload matches its checksum.  Anything else is
rebuilt and replaced, never read.
"""

from __future__ import annotations

import gc
import hashlib
import mmap
import os
import tempfile
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from detectors.corpus import NameIndex

__all__ = ["fingerprint", "load_or_build"]

# The modules whose code decides what the packed index holds and how it is read.
_CODE = ("corpus.py", "packed.py", "similarity.py", "names.py", "vocabulary.py", "corpus_cache.py")
_PREFIX = "corpus-"
_SUFFIX = ".bin"

I = TypeVar("I", bound=NameIndex)


def fingerprint(parts: Iterable[bytes | str]) -> str:
    """A SHA-256 over ``parts`` (the caller's inputs) and the index code, as hex."""
    digest = hashlib.sha256()
    package = resources.files("detectors")
    for module in _CODE:
        digest.update(package.joinpath(module).read_bytes())
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def load_or_build(kind: type[I], directory: Path, stamp: str, build: Callable[[str], I]) -> I:
    """The index of ``kind`` for fingerprint ``stamp``: mapped from ``directory``, else built and stored there.

    ``build(stamp)`` makes the index (with ``stamp`` as its fingerprint)
    when no intact file exists.  A directory that cannot be written leaves
    the built index in memory; the check still works, only slower to start.
    """
    path = directory / f"{_PREFIX}{stamp[:32]}{_SUFFIX}"
    index = _mapped(kind, path, stamp)
    if index is not None:
        return index
    built = build(stamp)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=_PREFIX, suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out:
                built.write(out)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return built
    for stale in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        if stale != path:
            try:
                stale.unlink()
            except OSError:
                pass
    # The file from now on (shared with every process that maps it); the built copy is let go
    # first, or both would be resident at once while the mapped one is checked.  An index and
    # its lazy views refer to each other: only the cycle collector frees it.
    del built
    gc.collect()
    return _mapped(kind, path, stamp) or build(stamp)


def _mapped(kind: type[I], path: Path, stamp: str) -> I | None:
    try:
        with open(path, "rb") as handle:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # absent, unreadable, or empty (mmap refuses length 0)
        return None
    try:
        return kind.from_buffer(buffer, fingerprint=stamp)
    except ValueError:
        try:
            buffer.close()
        except BufferError:  # a view of it is still held by the traceback; it goes with it
            pass
        return None
