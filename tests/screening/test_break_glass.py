"""One upper bound for break-glass allows, enforced where every one passes (issue 12, item 17)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mirror.db.models import Project
from mirror.review import actions
from mirror.screening.decisions import decide_project

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def quarantined(sessions) -> None:
    with sessions.begin() as session:
        decide_project(session, project="reqeusts", action="review", actor="policy", reason="squat", now=NOW)


def allow_until(sessions, until: datetime):
    with sessions.begin() as session:
        return actions.decide_on_project(
            session, project="reqeusts", action="allow", actor="rita", reason="incident", now=NOW, expires_at=until
        )


@pytest.mark.parametrize("until", [NOW + timedelta(hours=actions.MAX_BREAK_GLASS_HOURS, seconds=1),
                                   datetime(9999, 12, 31, tzinfo=timezone.utc)])
def test_an_expiry_beyond_the_bound_is_refused_and_changes_nothing(sessions, until) -> None:
    quarantined(sessions)
    with pytest.raises(actions.ReviewError, match=f"at most {actions.MAX_BREAK_GLASS_HOURS} hours"):
        allow_until(sessions, until)
    with sessions() as session:
        assert session.get(Project, "reqeusts").allow_until is None


def test_an_expiry_at_the_bound_is_accepted(sessions) -> None:
    quarantined(sessions)
    decision = allow_until(sessions, NOW + timedelta(hours=actions.MAX_BREAK_GLASS_HOURS))
    assert decision.action == "break-glass"


@pytest.mark.parametrize("hours", [0, -1, float("inf"), float("nan")])
def test_hours_that_are_not_a_duration_are_refused(hours) -> None:
    with pytest.raises(actions.ReviewError):
        actions.break_glass_expiry(NOW, hours)


def test_hours_too_large_for_a_date_get_the_bound_message() -> None:
    with pytest.raises(actions.ReviewError, match="at most"):
        actions.break_glass_expiry(NOW, 1e300)
