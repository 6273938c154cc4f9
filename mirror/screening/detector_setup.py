"""Detector and policy configuration, loaded once per process.

The popular-project corpus is the expensive part; it is loaded on first use
so that a server starts fast and a process that never screens never pays,
from the file ``[storage] corpus_cache`` names when one was built from the
same inputs (memory-mapped: the workers share it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import detectors
from mirror.config import Settings
from mirror.screening import policy as policy_mod
from mirror.sections import detector_config


_CORPORA: dict[str, Any] = {}
_CORPUS_LOCK = threading.Lock()


@dataclass
class DetectorSetup:
    config: Any
    policy: Any
    # [storage] corpus_cache: where the built corpus is kept and mapped from (None: built in memory).
    cache_dir: Path | None = None
    _corpus: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DetectorSetup":
        policy = policy_mod.PolicyConfig.from_mapping(settings.extra.get("policy", {}))
        return cls(config=detector_config(settings), policy=policy, cache_dir=settings.storage.corpus_cache_dir)

    def corpus(self) -> Any:
        """The popular corpus, shared by every Services in the process (it is read-only).

        Shared by configuration alone: where a corpus file is kept changes how
        fast it loads, never what it holds.
        """
        if self._corpus is None:
            with _CORPUS_LOCK:
                key = repr(self.config)
                if key not in _CORPORA:
                    _CORPORA[key] = detectors.load_corpus(self.config, cache_dir=self.cache_dir)
                self._corpus = _CORPORA[key]
        return self._corpus
