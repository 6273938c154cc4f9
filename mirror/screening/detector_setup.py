"""Detector and policy configuration, loaded once per process.

The popular-project corpus is the expensive part; it is loaded on first use
so that a server starts fast and a process that never screens never pays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import detectors
from mirror.config import Settings, SettingsError
from mirror.screening import policy as policy_mod


_CORPORA: dict[str, Any] = {}
_CORPUS_LOCK = threading.Lock()


@dataclass
class DetectorSetup:
    config: Any
    policy: Any
    _corpus: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DetectorSetup":
        try:
            config = detectors.DetectorConfig.from_mapping(settings.extra.get("detectors", {}))
        except ValueError as exc:
            raise SettingsError("detectors", str(exc)) from None
        try:
            policy = policy_mod.PolicyConfig.from_mapping(settings.extra.get("policy", {}))
        except ValueError as exc:
            raise SettingsError("policy", str(exc)) from None
        return cls(config=config, policy=policy)

    def corpus(self) -> Any:
        """The popular corpus, shared by every Services in the process (it is read-only)."""
        if self._corpus is None:
            with _CORPUS_LOCK:
                key = repr(self.config)
                if key not in _CORPORA:
                    _CORPORA[key] = detectors.load_corpus(self.config)
                self._corpus = _CORPORA[key]
        return self._corpus
