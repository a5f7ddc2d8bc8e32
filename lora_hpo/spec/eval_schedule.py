"""When a trial evaluates and reports: where it is needed. ASHA decides at its rungs (the
milestones grace x rf^k below max_t, in training steps), the curve stopper at every multiple
of its grace period, and every trial ends with a last report; ``training.eval_every`` adds a
regular grid for denser learning curves. Without a scheduler and without ``eval_every``, a
trial reports four times. Evaluations are a trial's
largest cost besides its steps, so none is spent where nothing reads it."""

from __future__ import annotations

import math

from lora_hpo.spec.spec_schema import StudySpec

MAX_RUNGS = 64
DEFAULT_REPORTS = 4  # without a scheduler or eval_every


def rungs(spec: StudySpec) -> list[int]:
    """ASHA's milestones as steps (Ray's ASHAScheduler: grace x rf^k < max_t, one bracket);
    a report at the first step at or past each one. The curve stopper's: the multiples of
    its grace period below max_t (it extrapolates from each report on)."""
    sch, max_t = spec.search.scheduler, spec.training.max_steps
    if sch.type == "curve":
        return list(range(sch.grace_period, max_t, sch.grace_period)) if sch.grace_period else []
    if sch.type != "asha":
        return []
    out, k = [], 0
    while k < MAX_RUNGS:
        milestone = sch.grace_period * sch.reduction_factor**k
        if milestone >= max_t:
            break
        out.append(math.ceil(milestone))
        k += 1
    return out


def eval_steps(spec: StudySpec) -> tuple[int, ...]:
    """The steps at which a trial evaluates, checkpoints and reports, ascending."""
    t = spec.training
    steps = set(rungs(spec)) | {t.max_steps}
    every = t.eval_every
    if every is None and not rungs(spec):
        every = max(1, t.max_steps // DEFAULT_REPORTS)
    if every:
        steps |= set(range(every, t.max_steps + 1, every))
    return tuple(sorted(s for s in steps if 0 < s <= t.max_steps))
