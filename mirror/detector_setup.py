"""Detector and policy configuration, loaded once per process.

The popular-project corpus is the expensive part; it is loaded on first use
so that a server starts fast and a process that never screens never pays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from mirror import policy as policy_mod
from mirror.settings import Settings, SettingsError


@dataclass
class DetectorSetup:
    config: Any
    policy: Any
    _corpus: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> "DetectorSetup":
        import detectors

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
        if self._corpus is None:
            with self._lock:
                if self._corpus is None:
                    import detectors

                    self._corpus = detectors.load_corpus(self.config)
        return self._corpus
