"""What a project and the projects its name resembles say about themselves, for the impersonation detector.

The candidate's own words come from the project JSON the screening fetches
anyway.  Its targets' are fetched only when the name detectors already found
a resemblance (a small share of first screenings): at most ``max_targets``
per screening, waited for at most ``wait_seconds`` together, and kept for
``ttl_seconds`` in a cache of at most ``max_entries`` (a target is a popular
project, asked about again by every squat of it).  What could not be
fetched is reported as a gap, so the decision is provisional and taken
again later, never as "nothing copied".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any

from detectors.facts import Finding, InternalNames, ProjectMetadata
from mirror.upstream.errors import UpstreamError
from mirror.upstream.project_info import project_metadata

__all__ = ["TargetMetadata", "resembled_targets"]

def resembled_targets(findings: Iterable[Finding], internal: InternalNames) -> list[str]:
    """The public projects the name findings say the candidate resembles, most severe first.

    Internal names are never among them: the mirror never asks upstream about one.
    """
    names: list[str] = []
    for finding in sorted(findings, key=lambda f: -f.severity):
        name = finding.target
        if (
            finding.detector == "typosquat"
            and name is not None
            and finding.evidence.get("target_kind") != "internal"
            and name not in internal.names
            and name not in names
        ):
            names.append(name)
    return names


class TargetMetadata:
    """Resembled projects' metadata from upstream: cached, bounded, time-limited (see the module docstring)."""

    def __init__(
        self,
        fetch: Callable[[str], dict[str, Any] | None],
        submit: Callable[..., Future[Any]],
        monotonic: Callable[[], float],
        *,
        wait_seconds: float = 5.0,
        ttl_seconds: float = 3600.0,
        max_entries: int = 2_000,
        max_targets: int = 2,
    ) -> None:
        self._fetch = fetch
        self._submit = submit
        self._monotonic = monotonic
        self.wait_seconds = wait_seconds
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_targets = max_targets
        self._cache: dict[str, tuple[float, ProjectMetadata | None]] = {}
        self._guard = threading.Lock()

    def lookup(self, names: Iterable[str]) -> tuple[dict[str, ProjectMetadata], list[str]]:
        """(metadata by name of those upstream has, gaps) for the first ``max_targets`` names."""
        wanted = list(names)[: self.max_targets]
        found: dict[str, ProjectMetadata] = {}
        pending: dict[str, Future[Any]] = {}
        now = self._monotonic()
        for name in wanted:
            with self._guard:
                hit = self._cache.get(name)
            if hit is not None and now - hit[0] < self.ttl_seconds:
                if hit[1] is not None:
                    found[name] = hit[1]
            else:
                pending[name] = self._submit(self._fetch, name)
        gaps: list[str] = []
        deadline = time.monotonic() + self.wait_seconds  # real time, whatever clock the cache reads
        for name, future in pending.items():
            try:
                document = future.result(timeout=max(deadline - time.monotonic(), 0.0))
            except FutureTimeout:
                future.cancel()
                gaps.append(f"the project JSON of '{name}', which the name resembles, took over {self.wait_seconds:g} s")
                continue
            except UpstreamError as exc:
                gaps.append(f"the project JSON of '{name}', which the name resembles, was unavailable ({exc})")
                continue
            metadata = project_metadata(document)
            self._remember(name, metadata)
            if metadata is not None:
                found[name] = metadata
        return found, gaps

    def _remember(self, name: str, metadata: ProjectMetadata | None) -> None:
        with self._guard:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[name] = (self._monotonic(), metadata)
