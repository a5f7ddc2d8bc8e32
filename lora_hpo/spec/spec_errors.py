"""Errors that name the file, the field, the constraint and the value given."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is and what is wrong."""

    path: str  # dotted field path, e.g. "space.r.low"
    message: str  # the constraint and the value, e.g. "must be >= 1, but got 0"
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


class SpecError(Exception):
    """A search-space file (or several) holds one or more problems; all are listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"found {n} problem{'s' if n != 1 else ''}:"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class UsageError(Exception):
    """Bad input outside a spec file (a flag, an address, a path): the CLI exits 2."""
