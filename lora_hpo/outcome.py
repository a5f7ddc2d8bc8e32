"""How a trial ended, derived from what Ray Tune knows about it (one rule, used everywhere)."""

from __future__ import annotations

from typing import Any

STATUSES = ("running", "pending", "completed", "stopped_early", "diverged", "failed")


def trial_status(tune_status: str, last_result: dict[str, Any] | None, max_steps: int) -> str:
    """completed | stopped_early | diverged | failed | running | pending."""
    last = last_result or {}
    if last.get("status") == "diverged":
        return "diverged"
    if tune_status == "ERROR":
        return "failed"
    if tune_status in ("PENDING", "PAUSED"):
        return "pending" if not last else "running"
    if tune_status == "RUNNING":
        return "running"
    step = int(last.get("step", 0) or 0)
    return "completed" if step >= max_steps else "stopped_early"
