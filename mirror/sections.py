"""Every section of the configuration checked before anything is created.

``mirror.config`` validates its own tables as models; the tables owned by
other parts of the mirror (policy, internal sources, review, audit,
notify) are ``mirror.config.Section`` models of their owners, read through
``section_from_mapping``.  Running every parser here, at start, means a
mistake in any table stops the server or a command with one line naming
the key (exit 2) before a database or a directory exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.run import DetectorConfig
from mirror.audit.settings import AuditSettings
from mirror.config import Settings, SettingsError
from mirror.notify import NotifySettings
from mirror.review.settings import ReviewSettings
from mirror.screening.policy import PolicyConfig
from mirror.serving.internal import InternalSettings


def detector_config(settings: Settings) -> DetectorConfig:
    """The ``[detectors]`` table; SettingsError names the bad key.

    The one table not read by pydantic: ``detectors`` is a pure library
    that knows nothing of the service, so its parser raises a plain
    ValueError worded ``"detectors.key: why"``, turned into a SettingsError
    here and nowhere else.
    """
    try:
        return DetectorConfig.from_mapping(settings.extra.get("detectors", {}))
    except ValueError as exc:
        key, sep, message = str(exc).partition(": ")
        if sep and key.split(".")[0] == "detectors":
            raise SettingsError(key, message) from None
        raise SettingsError("detectors", str(exc)) from None


PARSERS: dict[str, Callable[[Settings], Any]] = {
    "policy": lambda s: PolicyConfig.from_mapping(s.extra.get("policy", {})),
    "internal": lambda s: InternalSettings.from_mapping(s.extra.get("internal", {})),
    "detectors": detector_config,
    "review": ReviewSettings.from_settings,
    "audit": AuditSettings.from_settings,
    "notify": NotifySettings.from_settings,
}


def check_sections(settings: Settings) -> Settings:
    """Run every section's parser; raise SettingsError naming the first wrong key."""
    for parse in PARSERS.values():
        parse(settings)
    return settings


__all__ = ["PARSERS", "check_sections", "detector_config"]
