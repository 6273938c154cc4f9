"""Screening a release's dependencies as soon as a client has read its metadata, before it asks for them.

A resolver asks for one page at a time: the page, the metadata of the file
it picked, then the page of each dependency.  A never-seen project's page
costs a screening and a build, and the client waits through each in turn.
The metadata says which pages come next, so their screenings start at once,
in the page process, while the client is still reading what it got.

Bounded three ways: at most ``per_release`` dependencies of one release
(requirements that only an extra brings in are left out: a client asks for
those only when it wants the extra), at most ``queue`` screenings waiting,
and each one goes through ``ProjectService.page`` with the reading client's
description, so the gate, the not-found memory and that client's
screenings-per-minute budget apply exactly as if it had asked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mirror.errors import MirrorError
from mirror.simple.metadata import dependency_names

log = logging.getLogger(__name__)

_REMEMBERED = 10_000  # metadata files already read, before the memory of them starts again


class ScreenAhead:
    def __init__(
        self,
        *,
        page: Callable[[str, Mapping[str, Any]], object],
        known: Callable[[str], bool],
        per_release: int,
        queue: int,
        workers: int,
    ) -> None:
        self.page = page  # ProjectService.page: screens, builds, raises domain errors
        self.known = known  # whether a project needs no screening (decided, internal, known missing)
        self.per_release = per_release
        self.queue = queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="screen-ahead")
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._read: set[str] = set()

    def stored(self, metadata_id: str, path: Path, request: Mapping[str, Any]) -> None:
        """A client read the stored metadata file ``path``; returns at once."""
        if self._first_read(metadata_id):
            self._pool.submit(self._quietly, lambda: self._screen_dependencies(path.read_bytes(), request))

    def streamed(self, metadata_id: str, chunks: Iterator[bytes], request: Mapping[str, Any]) -> Iterator[bytes]:
        """``chunks`` of a metadata file on its way to a client; its dependencies are queued once it is whole."""
        if not self._first_read(metadata_id):
            yield from chunks
            return
        seen = []
        for chunk in chunks:
            seen.append(chunk)
            yield chunk
        metadata = b"".join(seen)  # off this thread: the client's response ends only when it returns
        self._pool.submit(self._quietly, lambda: self._screen_dependencies(metadata, request))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _first_read(self, metadata_id: str) -> bool:
        with self._lock:
            if metadata_id in self._read:
                return False
            if len(self._read) >= _REMEMBERED:
                self._read.clear()
            self._read.add(metadata_id)
            return True

    def _screen_dependencies(self, metadata: bytes, request: Mapping[str, Any]) -> None:
        for name in dependency_names(metadata)[: self.per_release]:
            with self._lock:
                if name in self._pending or len(self._pending) >= self.queue:
                    continue
            if self.known(name):
                continue
            with self._lock:
                self._pending.add(name)
            ahead = {**request, "path": f"/simple/{name}/", "ahead_of": request.get("path")}
            self._pool.submit(self._quietly, lambda name=name, ahead=ahead: self._screen(name, ahead))

    def _screen(self, name: str, request: Mapping[str, Any]) -> None:
        try:
            self.page(name, request)
        except MirrorError as exc:  # refused, missing, over budget, upstream down: the client's own request says so
            log.info("screening %s ahead of its request: %s", name, exc.message)
        finally:
            with self._lock:
                self._pending.discard(name)

    @staticmethod
    def _quietly(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - ahead of time only: the client's own request does it again
            log.warning("screening ahead failed", exc_info=True)
