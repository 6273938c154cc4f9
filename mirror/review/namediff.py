"""Two project names one above the other, column by column, with what differs marked.

A reviewer judging a look-alike must see at once *where* ``reqeusts``
leaves ``requests``.  The alignment is a cheapest edit script (Damerau's:
keep, replace, add, drop, or swap two neighbours, each edit costing one):
kept characters line up, an edited column is marked on both lines, and an
added or dropped character faces a gap cell so the columns stay aligned.
A swap reads as the two swapped letters marked, as a person would say it.
The cells are plain text; the template escapes them.
"""

from __future__ import annotations

from dataclasses import dataclass

GAP = "·"
MAX_NAME = 200


@dataclass(frozen=True)
class Cell:
    """One column of one line: a character (or a gap) and whether it differs from the other line."""

    text: str
    changed: bool = False
    gap: bool = False


@dataclass(frozen=True)
class Aligned:
    candidate: tuple[Cell, ...]
    target: tuple[Cell, ...]

    @property
    def changes(self) -> int:
        """How many columns differ (a reviewer's 'how far apart' at a glance)."""
        return sum(1 for cell in self.candidate if cell.changed)


def align(candidate: str, target: str) -> Aligned:
    """``candidate`` and ``target`` as two equally long rows of cells."""
    a, b = candidate[:MAX_NAME], target[:MAX_NAME]
    cost = _costs(a, b)
    top: list[Cell] = []
    bottom: list[Cell] = []
    i, j = len(a), len(b)
    while i or j:
        here = cost[i][j]
        if i and j and a[i - 1] == b[j - 1] and here == cost[i - 1][j - 1]:
            top.append(Cell(a[i - 1]))
            bottom.append(Cell(b[j - 1]))
            i, j = i - 1, j - 1
        elif (i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]
              and here == cost[i - 2][j - 2] + 1):
            top.extend([Cell(a[i - 1], True), Cell(a[i - 2], True)])
            bottom.extend([Cell(b[j - 1], True), Cell(b[j - 2], True)])
            i, j = i - 2, j - 2
        elif i and j and here == cost[i - 1][j - 1] + 1:
            top.append(Cell(a[i - 1], True))
            bottom.append(Cell(b[j - 1], True))
            i, j = i - 1, j - 1
        elif i and here == cost[i - 1][j] + 1:
            top.append(Cell(a[i - 1], True))
            bottom.append(Cell(GAP, True, True))
            i -= 1
        else:
            top.append(Cell(GAP, True, True))
            bottom.append(Cell(b[j - 1], True))
            j -= 1
    return Aligned(tuple(reversed(top)), tuple(reversed(bottom)))


def _costs(a: str, b: str) -> list[list[int]]:
    """Edit distances of every pair of prefixes (optimal string alignment)."""
    cost = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        cost[i][0] = i
    for j in range(len(b) + 1):
        cost[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            best = min(
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
                cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, cost[i - 2][j - 2] + 1)
            cost[i][j] = best
    return cost
