"""ASHA's rung rule, reproduced exactly from Ray Tune's ``AsyncHyperBandScheduler`` (one
bracket, ``stop_last_trials`` on): the rungs, the cutoff (the nanpercentile of the values
recorded at a rung, at (1 - 1/rf) * 100), the STOP at ``max_t``, and which rung a result is
recorded at. Ray's own scheduler is the reference: tests/bench/test_tabular_asha.py drives both
with the same results and asserts the same decisions.

A result is compared at the highest rung (milestone) at or below its step where the trial has
not been recorded yet, and recorded there whether or not it is stopped; a rung with nothing
recorded never stops a trial. Values are rewards: the metric for mode max, minus it for min.
"""

from __future__ import annotations

import numpy as np

CONTINUE, STOP = "CONTINUE", "STOP"


class Asha:
    """The rung rule of one ASHA bracket, in the units of ``time_attr`` (here: steps)."""

    def __init__(self, max_t: int, grace_period: int, reduction_factor: float, mode: str) -> None:
        assert max_t >= grace_period > 0 and reduction_factor > 1
        self.max_t, self.rf = max_t, reduction_factor
        self.sign = 1.0 if mode == "max" else -1.0
        count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
        # highest milestone first, as Ray keeps them
        self.rungs: list[tuple[float, dict[str, float]]] = [
            (grace_period * reduction_factor**k, {}) for k in reversed(range(count))
        ]

    def milestones(self) -> list[float]:
        return sorted(m for m, _ in self.rungs)

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        if not recorded:
            return None
        return float(np.nanpercentile(list(recorded.values()), (1 - 1 / self.rf) * 100))

    def _bracket(self, trial: str, step: float, value: float) -> str:
        reward = self.sign * value
        action = CONTINUE
        for milestone, recorded in self.rungs:
            if step < milestone or trial in recorded:
                continue
            cutoff = self.cutoff(recorded)
            if cutoff is not None and reward < cutoff:
                action = STOP
            recorded[trial] = reward
            break
        return action

    def on_result(self, trial: str, step: float, value: float) -> str:
        """CONTINUE or STOP for one reported result (Ray's ``on_trial_result``)."""
        if step >= self.max_t:
            return STOP
        return self._bracket(trial, step, value)

    def on_complete(self, trial: str, step: float, value: float) -> None:
        """A trial ended (stopped or done) with this last result (Ray's
        ``on_trial_complete``): a result at max_t is recorded at the top rung."""
        self._bracket(trial, step, value)
