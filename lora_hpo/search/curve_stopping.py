"""Stopping on the learning curve: a Ray Tune scheduler that stops a trial once even an
optimistic extrapolation of its curve cannot reach the incumbent.

At each report from ``min_t`` steps on, the trial's curve is extrapolated to ``max_t`` along
the steepest improvement it has shown per step between two reports (so a curve that flattens,
as training curves do, is over-estimated, never under-estimated). When that projection is
still worse than the best value a trial has reached at ``max_t``, the trial stops. Until a
trial has completed there is nothing to beat, and nothing stops.

ASHA compares a trial's value at a rung with its peers' values at that rung, so a trial that
starts slow (a large step size whose loss first rises) is stopped at the first rung. This rule
asks only whether the trial can still win, so it stops later and less, but it never stops the
trial that would have won if its curve flattens from here, and it needs no rung layout.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class CurveStopper(FIFOScheduler):
    def __init__(
        self,
        time_attr: str,
        max_t: int,
        min_t: int,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        self._time_attr, self._max_t, self._min_t = time_attr, max_t, min_t
        self._metric, self._mode = metric, mode
        self._curves: dict[str, list[tuple[float, float]]] = {}
        self._best: float | None = None  # the best value reached at max_t, in "higher wins" sign

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if self._metric is not None and metric is not None and metric != self._metric:
            return False
        if self._mode is not None and mode is not None and mode != self._mode:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def _signed(self, value: Any) -> float | None:
        """The value with higher better (None when not a finite number)."""
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value) if self._mode == "max" else -float(value)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        t, value = result.get(self._time_attr), self._signed(result.get(self._metric or ""))
        if t is None or value is None:
            return TrialScheduler.CONTINUE
        curve = self._curves.setdefault(trial.trial_id, [])
        curve.append((float(t), value))
        if t >= self._max_t:
            self._record(value)
            return TrialScheduler.CONTINUE
        if t < self._min_t or self._best is None or len(curve) < 2:
            return TrialScheduler.CONTINUE
        return (
            TrialScheduler.STOP if self.projection(curve) < self._best else TrialScheduler.CONTINUE
        )

    def projection(self, curve: list[tuple[float, float]]) -> float:
        """The curve's optimistic value at ``max_t``: its last value plus its steepest gain
        per step so far over the steps left (its best value so far if it has not gained)."""
        slopes = [
            (v1 - v0) / (t1 - t0) for (t0, v0), (t1, v1) in itertools.pairwise(curve) if t1 > t0
        ]
        t, value = curve[-1]
        steepest = max([0.0, *slopes])
        return max(value + steepest * (self._max_t - t), max(v for _, v in curve))

    def _record(self, value: float) -> None:
        self._best = value if self._best is None else max(self._best, value)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        curve = self._curves.pop(trial.trial_id, [])
        if curve and curve[-1][0] >= self._max_t:
            self._record(curve[-1][1])

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._curves.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        best = "none yet" if self._best is None else f"{abs(self._best):.4g}"
        return f"Stopping on the learning curve (incumbent at max_t: {best})."
