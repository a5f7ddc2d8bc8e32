"""The tabular simulator's ASHA (bench.tabular.asha) against Ray Tune's own ASHAScheduler:
the same results in the same order give the same STOP decisions at the same steps, on many
random cases driven through the scheduler directly and on one real Tune run."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from bench.tabular.asha import STOP, Asha


def ray_asha(max_t: int, grace: int, rf: float, mode: str) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="step", metric="m", mode=mode, max_t=max_t, grace_period=grace,
        reduction_factor=rf,
    )  # fmt: skip


def case(rng: random.Random) -> dict[str, Any]:
    """Random trials (curves with an eval every few steps, some cut short) and a random
    interleaving of their reports with up to 3 trials at once."""
    every = rng.choice([1, 2, 5])
    max_t = every * rng.choice([4, 6, 8, 12])
    grace = rng.choice([g for g in range(1, max_t + 1) if g <= max_t // 2] or [1])
    curves = []
    for _ in range(rng.randint(3, 14)):
        n = max_t // every if rng.random() > 0.2 else rng.randint(1, max_t // every)
        curves.append([(every * (k + 1), round(rng.random(), 2)) for k in range(n)])
    return {"max_t": max_t, "grace": grace, "rf": rng.choice([2, 3, 4]), "curves": curves,
            "mode": rng.choice(["max", "min"]), "slots": rng.randint(1, 3)}  # fmt: skip


def replay(c: dict[str, Any], seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Feed the same interleaved results to both; the (trial, step) of each STOP."""
    ours, ray = (
        Asha(c["max_t"], c["grace"], c["rf"], c["mode"]),
        ray_asha(c["max_t"], c["grace"], c["rf"], c["mode"]),
    )
    rng, waiting = random.Random(seed), list(range(len(c["curves"])))
    running: dict[int, int] = {}
    stops: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
    while waiting or running:
        while waiting and len(running) < c["slots"]:
            i = waiting.pop(0)
            running[i] = 0
            ray.on_trial_add(None, SimpleNamespace(trial_id=str(i)))
        i = rng.choice(sorted(running))
        step, value = c["curves"][i][running[i]]
        trial, result = SimpleNamespace(trial_id=str(i)), {"step": step, "m": value}
        a, b = ours.on_result(str(i), step, value), ray.on_trial_result(None, trial, result)
        for out, decision in zip(stops, (a, b), strict=True):
            if decision == STOP:
                out.append((i, step))
        running[i] += 1
        if a == STOP or b == STOP or running[i] == len(c["curves"][i]):
            ours.on_complete(str(i), step, value)
            ray.on_trial_complete(None, trial, result)
            del running[i]
    return stops


@pytest.mark.parametrize("seed", range(60))
def test_same_stops_as_rays_scheduler(seed: int) -> None:
    c = case(random.Random(seed))
    ours, ray = replay(c, seed)
    assert ours == ray


def test_rungs_are_rays() -> None:
    ours, ray = Asha(40, 20, 2, "max"), ray_asha(40, 20, 2, "max")
    assert ours.milestones() == sorted(m for m, _ in ray._brackets[0]._rungs) == [20, 40]
    assert Asha(12, 4, 2, "min").milestones() == [4, 8]
    assert Asha(100, 1, 4, "max").milestones() == [1, 4, 16, 64]


def test_first_at_a_rung_goes_on_and_worse_than_cutoff_stops() -> None:
    a = Asha(40, 10, 2, "max")
    assert a.on_result("a", 10, 0.5) != STOP  # nothing recorded at the rung yet
    assert a.on_result("b", 10, 0.4) == STOP  # below the median of {0.5}
    assert a.on_result("c", 10, 0.6) != STOP
    assert a.on_result("a", 40, 0.9) == STOP  # max_t
    m = Asha(40, 10, 2, "min")
    m.on_result("a", 10, 0.5)
    assert m.on_result("b", 10, 0.6) == STOP and m.on_result("c", 10, 0.4) != STOP


def test_random_cases_do_stop_trials() -> None:
    """The random cases above are not vacuous: most of them stop some trial."""
    stopping = sum(bool(replay(case(random.Random(s)), s)[1]) for s in range(60))
    assert stopping >= 30


CURVES = [  # (step, value) every 2 steps up to max_t 8; rungs at 2 and 4 (and 8)
    [(2, 0.5), (4, 0.6), (6, 0.7), (8, 0.8)],
    [(2, 0.4), (4, 0.9), (6, 0.9), (8, 0.9)],
    [(2, 0.6), (4, 0.5), (6, 0.5), (8, 0.5)],
    [(2, 0.55), (4, 0.7), (6, 0.75), (8, 0.8)],
    [(2, 0.3), (4, 0.3), (6, 0.3), (8, 0.3)],
    [(2, 0.65), (4, 0.95), (6, 0.95), (8, 0.99)],
]


@pytest.mark.slow
def test_same_stops_as_a_real_tune_run(tmp_path: Any) -> None:
    """A real Tune run, one trial at a time, of a trainable that replays fixed curves: every
    trial ends at the step our rule stops it (or at max_t)."""
    import ray
    from ray import tune

    def replay_curve(config: dict[str, Any]) -> None:
        for step, value in CURVES[config["i"]]:
            tune.report({"step": step, "m": value})

    asha = ray_asha(8, 2, 2, "max")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            replay_curve,
            param_space={"i": tune.grid_search(list(range(len(CURVES))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=1, scheduler=asha),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        )
        grid = tuner.fit()
        results = [grid[k] for k in range(len(grid))]
        ray_last = {r.config["i"]: (r.metrics or {})["step"] for r in results}
    finally:
        ray.shutdown()
    ours, expected = Asha(8, 2, 2, "max"), {}
    for i, curve in enumerate(CURVES):
        for step, value in curve:
            if ours.on_result(str(i), step, value) == STOP or step == curve[-1][0]:
                ours.on_complete(str(i), step, value)
                expected[i] = step
                break
    assert ray_last == expected
    assert any(step < 8 for step in expected.values())  # the case stops some trials early
