"""Every section of the configuration checked before anything is created.

``mirror.config`` validates its own tables as models; the tables owned by
other parts of the mirror (policy, internal sources, detectors, review,
audit, notify) are parsed by their owners.  Running every parser here, at
start, means a mistake in any table stops the server or a command with one
line naming the key (exit 2) before a database or a directory exists.
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

PARSERS: dict[str, Callable[[Settings], Any]] = {
    "policy": lambda s: PolicyConfig.from_mapping(s.extra.get("policy", {})),
    "internal": lambda s: InternalSettings.from_mapping(s.extra.get("internal", {})),
    "detectors": lambda s: DetectorConfig.from_mapping(s.extra.get("detectors", {})),
    "review": lambda s: ReviewSettings.from_mapping(s.extra.get("review", {})),
    "audit": lambda s: AuditSettings.from_mapping(s.extra.get("audit", {})),
    "notify": lambda s: NotifySettings.from_settings(s),
}


def check_sections(settings: Settings) -> Settings:
    """Run every section's parser; raise SettingsError naming the first wrong key."""
    for section, parse in PARSERS.items():
        try:
            parse(settings)
        except SettingsError:
            raise
        except ValueError as exc:  # parsers that speak "section.key: why"
            raise as_settings_error(section, str(exc)) from None
    return settings


def as_settings_error(section: str, text: str) -> SettingsError:
    key, sep, message = text.partition(": ")
    if not sep or not key.startswith(section):
        return SettingsError(section, text)
    return SettingsError(key, message)


__all__ = ["PARSERS", "check_sections"]
