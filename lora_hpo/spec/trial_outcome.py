"""How a trial ended, and which trials are best: ONE status rule and ONE ranking rule, used
by the live view, the end-of-study summary, the tracker's champion, ``best`` / ``export`` and
the staged strategy's stages."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

STATUSES = ("running", "pending", "completed", "stopped_early", "diverged", "failed")
RANKED = ("completed", "stopped_early")  # a diverged, failed or unfinished trial never ranks

T = TypeVar("T")


def trial_status(tune_status: str, last_result: dict[str, Any] | None, max_steps: int) -> str:
    """completed | stopped_early | diverged | failed | running | pending."""
    last = last_result or {}
    if last.get("status") == "diverged":
        return "diverged"
    if tune_status == "ERROR":
        return "failed"
    if tune_status == "RUNNING":
        return "running"
    if "step" not in last:  # never reported: not started, or stopped before its first report
        return "pending"
    if tune_status in ("PENDING", "PAUSED"):
        return "running"
    step = int(last.get("step", 0) or 0)
    return "completed" if step >= max_steps else "stopped_early"


def ranked(items: Iterable[T], describe: Callable[[T], tuple[str, str, Any]], mode: str) -> list[T]:
    """The items that rank, best first. ``describe(item)`` gives (trial id, status, value of
    the study metric). Only completed and stopped-early trials with a finite value rank; a
    better value comes first, then a completed trial before a stopped one, then the trial id."""
    sign = -1.0 if mode == "max" else 1.0
    keyed = []
    for item in items:
        trial_id, status, value = describe(item)
        if status in RANKED and _finite(value):
            keyed.append(((sign * float(value), RANKED.index(status), str(trial_id)), item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
