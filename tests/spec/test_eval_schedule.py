"""Where trials evaluate: at ASHA's rungs (or every multiple of the curve stopper's grace
period), the last step and an optional regular grid."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lora_hpo.spec.eval_schedule import eval_steps, rungs
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


def _spec(max_steps: int, eval_every: int | None, scheduler: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["training"] = {"max_steps": max_steps, "batch_size": 8}
    if eval_every is not None:
        data["training"]["eval_every"] = eval_every
    data["search"]["scheduler"] = scheduler
    return parse_spec(data)


ASHA = {"type": "asha", "grace_period": 5, "reduction_factor": 2}


@pytest.mark.parametrize(
    ("max_steps", "every", "scheduler", "expected"),
    [
        (40, None, {"type": "asha", "grace_period": 20, "reduction_factor": 3}, (20, 40)),
        (40, None, ASHA, (5, 10, 20, 40)),
        (40, 10, ASHA, (5, 10, 20, 30, 40)),
        (23, None, ASHA, (5, 10, 20, 23)),
        (40, None, {"type": "none"}, (10, 20, 30, 40)),
        (3, None, {"type": "none"}, (1, 2, 3)),
        (40, 15, {"type": "none"}, (15, 30, 40)),
        (40, None, {"type": "curve", "grace_period": 10}, (10, 20, 30, 40)),
        (45, None, {"type": "curve", "grace_period": 20}, (20, 40, 45)),
        (40, 15, {"type": "curve", "grace_period": 20}, (15, 20, 30, 40)),
    ],
)
def test_eval_steps(
    max_steps: int, every: int | None, scheduler: dict[str, Any], expected: tuple[int, ...]
) -> None:
    assert eval_steps(_spec(max_steps, every, scheduler)) == expected


def test_rungs_match_ray_asha_milestones() -> None:
    """Ray's ASHAScheduler places rungs at grace x rf^k below max_t; a report at each."""
    from ray.tune.schedulers import ASHAScheduler

    spec = _spec(200, None, {"type": "asha", "grace_period": 7, "reduction_factor": 3})
    asha = ASHAScheduler(time_attr="step", max_t=200, grace_period=7, reduction_factor=3)
    milestones = sorted(m for m, _ in asha._brackets[0]._rungs if m < 200)
    assert rungs(spec) == milestones
