"""Search-space parameters: each is fixed, a range, or a list of choices, plus the questions
every layer asks of one (its bounds, whether it can take a value)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def doc(text: str, **extra: Any) -> dict[str, Any]:
    """A spec field's metadata: its help text, and parser hints (``param``, ``least``, ...)."""
    return {"help": text, **extra}


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]


Param = Fixed | Range | Choices


def bounds(param: Param) -> tuple[Any, Any]:
    """The smallest and largest value a parameter can take."""
    if isinstance(param, Fixed):
        return param.value, param.value
    if isinstance(param, Range):
        return param.low, param.high
    return min(param.values), max(param.values)


def can_be(param: Param, value: Any) -> bool:
    """Whether the parameter can take ``value``."""
    if isinstance(param, Fixed):
        return bool(param.value == value)
    if isinstance(param, Choices):
        return value in param.values
    return bool(param.low <= value <= param.high)


def listed(param: Param) -> tuple[Any, ...]:
    """The values a fixed or choices parameter lists (empty for a range)."""
    return (param.value,) if isinstance(param, Fixed) else getattr(param, "values", ())


@dataclass(frozen=True)
class SplitFiles:
    """``data.files`` given as a mapping from split name to files, the way
    ``datasets.load_dataset(data_files=...)`` takes it (kept hashable: split, files pairs)."""

    splits: tuple[tuple[str, tuple[str, ...]], ...]

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.splits)
