"""The queue page's small chart: decisions per day (bars) and queue size (a line), as SVG geometry.

Drawn on the server as inline SVG: no script, no CDN, nothing the page's
Content-Security-Policy would have to allow.  This module only computes
coordinates; the template draws them, so every label is escaped like any
other text.  The SVG scales with its ``viewBox``: it never makes a narrow
window scroll sideways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mirror.review.queries import Day

WIDTH = 600
HEIGHT = 160
LEFT = 36
BOTTOM = 20
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    allowed_y: float
    allowed_h: float
    blocked_y: float
    blocked_h: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    queue_points: str
    max_decisions: int
    max_queue: int
    first_label: str
    last_label: str
    baseline: float
    left: int
    top: int
    days: Sequence[Day]

    @property
    def empty(self) -> bool:
        return not self.days or (self.max_decisions == 0 and self.max_queue == 0)


def build(days: Sequence[Day]) -> Chart:
    """Bars scaled to the busiest day, the queue line to its largest size (two scales, both labelled)."""
    plot_w = WIDTH - LEFT - 4
    plot_h = HEIGHT - BOTTOM - TOP
    baseline = float(TOP + plot_h)
    max_decisions = max((d.allowed + d.blocked for d in days), default=0)
    max_queue = max((d.queued for d in days), default=0)
    step = plot_w / len(days) if days else plot_w
    bars = []
    points = []
    for i, day in enumerate(days):
        x = LEFT + i * step
        scale = plot_h / max_decisions if max_decisions else 0
        blocked_h = day.blocked * scale
        allowed_h = day.allowed * scale
        bars.append(
            Bar(
                x=round(x + step * 0.15, 1),
                width=round(step * 0.7, 1),
                blocked_y=round(baseline - blocked_h, 1),
                blocked_h=round(blocked_h, 1),
                allowed_y=round(baseline - blocked_h - allowed_h, 1),
                allowed_h=round(allowed_h, 1),
                label=f"{day.start:%Y-%m-%d}: {day.allowed} allowed, {day.blocked} blocked, queue {day.queued}",
            )
        )
        y = baseline - (day.queued * plot_h / max_queue if max_queue else 0)
        points.append(f"{x + step / 2:.1f},{y:.1f}")
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        queue_points=" ".join(points),
        max_decisions=max_decisions,
        max_queue=max_queue,
        first_label=f"{days[0].start:%b %d}" if days else "",
        last_label=f"{days[-1].start:%b %d}" if days else "",
        baseline=baseline,
        left=LEFT,
        top=TOP,
        days=days,
    )
