"""Small rule helpers that yield Problems naming the field, the constraint and the value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lora_hpo.spec.spec_errors import Problem


def one_of(section: Any, names: tuple[str, ...], path: str) -> Iterator[Problem]:
    given = [n for n in names if getattr(section, n) is not None]
    if len(given) != 1:
        got = ", ".join(f"{n}={getattr(section, n)!r}" for n in given) or "none"
        yield Problem(path, f"exactly one of {', '.join(names)} is required, but got {got}")


def at_least(value: float, low: float, path: str, strict: bool = False) -> Iterator[Problem]:
    if value < low or (strict and value == low):
        yield Problem(path, f"must be {'>' if strict else '>='} {low}, but got {value}")
