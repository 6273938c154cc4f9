"""The ``[review]`` settings table, checked at start like every other section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from mirror.config import Settings, SettingsError


@dataclass(frozen=True)
class ReviewSettings:
    # When true, /simple/ and /files/ need HTTP Basic credentials whose
    # password is a valid token (pip and uv send them from the index URL).
    require_client_auth: bool = False
    # How long a browser stays signed in to the admin pages.
    session_hours: float = 12.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ReviewSettings:
        known = {"require_client_auth", "session_hours"}
        for key in raw:
            if key not in known:
                raise SettingsError(f"review.{key}", "unknown key")
        require = raw.get("require_client_auth", False)
        if not isinstance(require, bool):
            raise SettingsError("review.require_client_auth", f"must be true or false, not {require!r}")
        hours = raw.get("session_hours", 12.0)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 30:
            raise SettingsError("review.session_hours", f"must be a number of hours between 0 and 720, not {hours!r}")
        return cls(require_client_auth=require, session_hours=float(hours))

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewSettings:
        return cls.from_mapping(settings.extra.get("review", {}))
