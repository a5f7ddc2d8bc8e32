"""``strategy: staged``: the seed's procedure as a feature.

Stage 1 holds the adapter's scale fixed (α = r, or rsLoRA with a fixed α) and doubles r from
``r_min`` until the gain on held-out data falls under ``plateau_tolerance`` (or ``r_max``).
Stage 2 takes the plateau rank (the smallest r within tolerance of the best) and searches α/r
(or α/√r with rsLoRA) together with the learning rate. Every stage is an ordinary study, so it
gets ASHA, tracking and resume like any other; a small JSON state file in the storage root
records finished stages so ``resume`` continues where the driver died. With tracking
(``staged_tracking.StagedRun``), the staged study is one MLflow parent run and each stage's
study run is its child.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lora_hpo.checks import can_be
from lora_hpo.spec import Fixed, Range, SpaceSpec, StudySpec

STATE_FILE = "lora_hpo_staged.json"

# A stage runner takes a stage's spec and returns its best metric (None when nothing finished).
StageRunner = Callable[[StudySpec], float | None]


def ranks(spec: StudySpec) -> list[int]:
    """Stage 1's ranks: powers of two from r_min to r_max."""
    st, out = spec.search.staged, []
    r = st.r_min
    while r <= st.r_max:
        out.append(r)
        r *= 2
    return out


def _rslora(space: SpaceSpec) -> bool:
    return can_be(space.use_rslora, True)


def _stage(spec: StudySpec, name: str, space: SpaceSpec, samples: int) -> StudySpec:
    search = dataclasses.replace(
        spec.search,
        strategy="single",
        num_samples=samples,
        max_concurrent=min(spec.search.max_concurrent, samples),
    )
    tracking = dataclasses.replace(spec.tracking, experiment=spec.experiment)  # one experiment
    return dataclasses.replace(spec, name=name, space=space, search=search, tracking=tracking)


def _alpha_free(space: SpaceSpec, **alpha: Any) -> SpaceSpec:
    cleared = {"lora_alpha": None, "alpha_ratio": None, "alpha_scale": None}
    return dataclasses.replace(space, **(cleared | alpha))


def stage1_spec(spec: StudySpec, r: int) -> StudySpec:
    """r fixed; the scale fixed (α = r, or rsLoRA with a fixed α); lr as the spec says."""
    st = spec.search.staged
    if _rslora(spec.space):
        space = _alpha_free(spec.space, lora_alpha=Fixed(st.rslora_alpha), use_rslora=Fixed(True))
    else:
        space = _alpha_free(spec.space, alpha_ratio=Fixed(1.0))
    space = dataclasses.replace(space, r=Fixed(r))
    return _stage(spec, f"{spec.name}-stage1-r{r}", space, st.samples_per_rank)


def stage2_spec(spec: StudySpec, r: int) -> StudySpec:
    """r fixed at the plateau; α/r (or α/√r with rsLoRA) searched with the learning rate."""
    st = spec.search.staged
    band = Range(st.ratio_low, st.ratio_high)
    if _rslora(spec.space):
        space = _alpha_free(spec.space, alpha_scale=band, use_rslora=Fixed(True))
    else:
        space = _alpha_free(spec.space, alpha_ratio=band)
    space = dataclasses.replace(space, r=Fixed(r))
    return _stage(spec, f"{spec.name}-stage2", space, st.stage2_samples)


def gain(prev: float, cur: float, mode: str) -> float:
    """Relative improvement of ``cur`` over ``prev`` (positive is better)."""
    delta = (cur - prev) if mode == "max" else (prev - cur)
    return delta / abs(prev) if prev else delta


def plateau(scores: dict[int, float], tolerance: float, mode: str) -> int:
    """The smallest rank whose score is within ``tolerance`` (relative) of the best."""
    best = max(scores.values()) if mode == "max" else min(scores.values())
    return min(r for r, s in scores.items() if gain(s, best, mode) <= tolerance)


@dataclass
class StagedState:
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names the MLflow parent run
    scores: dict[int, float] = field(default_factory=dict)  # stage 1: rank -> best metric
    plateau_rank: int | None = None
    decision: str = ""
    stage2_best: float | None = None
    done: bool = False

    @classmethod
    def load(cls, path: Path) -> StagedState:
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        raw["scores"] = {int(k): v for k, v in raw["scores"].items()}
        return cls(**raw)

    @classmethod
    def ensure(cls, path: Path) -> StagedState:
        """The saved state, or a fresh one written now (so its key survives a crash)."""
        state = cls.load(path)
        if not path.is_file():
            state.save(path)
        return state

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        tmp.replace(path)


def run_stage1(
    spec: StudySpec,
    run: StageRunner,
    state: StagedState,
    save: Callable[[], None],
    say: Callable[[str], None],
) -> int:
    """Double r until the plateau; returns the plateau rank (and records the decision)."""
    st, metric, mode = spec.search.staged, spec.metric, spec.mode
    previous: int | None = None
    for r in ranks(spec):
        if r not in state.scores:
            score = run(stage1_spec(spec, r))
            if score is None:
                say(f"stage 1: no trial at r={r} finished; stopping the rank sweep")
                break
            state.scores[r] = score
            save()
        say(f"stage 1: r={r} best {metric} {state.scores[r]:.4g}")
        if previous is not None:
            g = gain(state.scores[previous], state.scores[r], mode)
            if g < st.plateau_tolerance:
                chosen = plateau(state.scores, st.plateau_tolerance, mode)
                change = (
                    f"improved {metric} by only {g:.1%}"
                    if g > 0
                    else f"did not improve {metric} ({g:+.1%})"
                )
                state.decision = (
                    f"rank plateau at r={chosen}: r={r} {change}"
                    f" over r={previous} (tolerance {st.plateau_tolerance:.1%})"
                )
                return chosen
        previous = r
    if not state.scores:
        raise RuntimeError("stage 1 produced no result at any rank")
    chosen = plateau(state.scores, st.plateau_tolerance, mode)
    state.decision = (
        f"no plateau up to r={max(state.scores)}: using r={chosen}, the smallest rank within"
        f" {st.plateau_tolerance:.1%} of the best"
    )
    return chosen


def run_staged(
    spec: StudySpec, run: StageRunner, state_path: Path, say: Callable[[str], None] = print
) -> StagedState:
    """Stage 1 then stage 2; safe to call again after a crash (finished stages are skipped)."""
    state = StagedState.load(state_path)

    def save() -> None:
        state.save(state_path)

    if state.plateau_rank is None:
        state.plateau_rank = run_stage1(spec, run, state, save, say)
        save()
    say(state.decision)
    state.stage2_best = run(stage2_spec(spec, state.plateau_rank))  # a finished stage restores
    state.done = True
    save()
    say(f"stage 2: best {spec.metric} {state.stage2_best} at r={state.plateau_rank}")
    return state


class StageTracking(Protocol):
    """What a staged study tells its tracker: see ``staged_tracking.StagedRun``."""

    def start(self, key: str) -> None: ...

    def callbacks(self, stage: StudySpec) -> list[Any]: ...

    def finish(self, state: StagedState) -> None: ...


def run_staged_study(
    spec: StudySpec,
    *,
    storage_path: str | None = None,
    address: str | None = None,
    tracking: StageTracking | None = None,
    callbacks: list[Any] | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> Any:
    """Run (or resume) a staged study on Ray Tune; returns stage 2's StudyResult.

    ``tracking`` gives each stage its own callbacks (an MLflow tracker under one parent run);
    ``callbacks`` are passed to every stage as they are."""
    from lora_hpo.tuner import connect, run_or_resume, storage_root, write_spec

    storage = storage_root(storage_path)
    connect(address, spec)
    write_spec(spec, f"{storage.rstrip('/')}/{spec.name}")  # so ``resume NAME`` finds it
    state_path = Path(storage) / spec.name / STATE_FILE
    if tracking is not None:
        tracking.start(StagedState.ensure(state_path).key)
    results: dict[str, Any] = {}

    def run(stage: StudySpec) -> float | None:
        cbs = (tracking.callbacks(stage) if tracking else []) + list(callbacks or [])
        result = run_or_resume(stage, storage, address, cbs, progress)
        results[stage.name] = result
        if result.best is None:
            return None
        return float(result.best.metrics[spec.metric])

    state = run_staged(spec, run, state_path, say)
    if tracking is not None:
        tracking.finish(state)
    final = results[f"{spec.name}-stage2"]
    final.decision = state.decision
    return final
