"""The ``[review]`` settings table, checked at start like every other section.

A model like the core sections (``mirror.config.Section``): an unknown key
or a wrong value stops the server or a command with one line naming
``review.KEY`` (exit 2), before a database or a directory exists
(``mirror.sections`` runs this parser at start).
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field, StrictBool

from mirror.config import Section, Settings, section_from_mapping


class ReviewSettings(Section):
    # When true, /simple/ and /files/ need HTTP Basic credentials whose
    # password is a valid token (pip and uv send them from the index URL).
    require_client_auth: StrictBool = False
    # How long a browser stays signed in to the admin pages.
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    # Releases listed per page on a project's admin page (one form for all of them).
    releases_per_page: int = Field(50, ge=1, le=1000)
    # Most releases one bulk decision may change: a selection, or "all held up to version V".
    max_bulk_releases: int = Field(500, ge=1, le=10_000)
    # Days the queue page's chart of decisions and queue size covers.
    chart_days: int = Field(30, ge=1, le=366)
    # Days a refused client is remembered ("clients that asked"); older ones are pruned.
    refusals_retention_days: int = Field(30, ge=1, le=3650)
    # Distinct (project, client) counters waiting in memory for the next write; new clients
    # past it are dropped (and logged) until then.  Clients kept per project; the rest share one row.
    refusals_max_waiting: int = Field(10_000, ge=1, le=1_000_000)
    refusals_max_clients: int = Field(1_000, ge=1, le=1_000_000)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ReviewSettings:
        return section_from_mapping(cls, "review", raw)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewSettings:
        return cls.from_mapping(settings.extra.get("review", {}))
