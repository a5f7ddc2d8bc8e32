"""Errors that name the file, the field, the constraint and the value given."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is and what is wrong."""

    path: str  # dotted field path, e.g. "space.r.low"
    message: str  # the constraint and the value, e.g. "must be >= 1, but got 0"
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = f"{shorten(self.path, 200)}: " if self.path else ""
        return f"{where}{field}{shorten(self.message)}"


def shorten(text: str, most: int = 600) -> str:
    """``text``, or its head and tail around how much was left out when it is over ``most``
    characters (a value given, or an unknown key, can be megabytes long)."""
    if len(text) <= most:
        return text
    tail = most // 8
    head = most - tail - 40
    return f"{text[:head]}... ({len(text) - head - tail:,} characters left out) ...{text[-tail:]}"


ITEMS_SHOWN = 3  # problems listed per list (data.files[i], space.r.choices[i], ...)
LINES_SHOWN = 50  # problems listed in all


def _list_of(problem: Problem) -> tuple[str, str] | None:
    """(file, the list's path) for a problem in one item of a list."""
    cut = problem.path.find("[")
    return (problem.file, problem.path[:cut]) if cut > 0 else None


class SpecError(Exception):
    """A search-space file (or several) holds one or more problems; all are kept in
    ``problems``, and listed, but for the items of a long list and past ``LINES_SHOWN``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        totals = Counter(_list_of(p) for p in self.problems)
        seen: Counter[tuple[str, str] | None] = Counter()
        lines = [f"found {n} problem{'s' if n != 1 else ''}:"]
        for p in self.problems:
            key = _list_of(p)
            seen[key] += 1
            if key is None or seen[key] <= ITEMS_SHOWN:
                lines.append(f"  - {p}")
            if key is not None and seen[key] == ITEMS_SHOWN and totals[key] > ITEMS_SHOWN:
                where = Problem(key[1], f"... and {totals[key] - ITEMS_SHOWN:,} more", key[0])
                lines.append(f"  - {where} in its items")
        if len(lines) > LINES_SHOWN + 1:
            lines[LINES_SHOWN + 1 :] = [f"  ... and {len(lines) - LINES_SHOWN - 1:,} more"]
        return "\n".join(lines)


class UsageError(Exception):
    """Bad input outside a spec file (a flag, an address, a path): the CLI exits 2."""
