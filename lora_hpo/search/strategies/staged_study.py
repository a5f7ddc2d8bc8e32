"""``strategy: staged``: the seed's procedure as a feature.

Stage 1 holds the adapter's scale fixed (α = r, or rsLoRA with a fixed α) and doubles r from
``r_min`` until the gain on held-out data falls under ``plateau_tolerance`` (or ``r_max``).
Stage 2 takes the plateau rank (the smallest r within tolerance of the best) and searches α/r
(or α/√r with rsLoRA) together with the learning rate. Every stage is an ordinary study run by
the single-study runner, so it gets ASHA, tracking and resume like any other. A small JSON
state file in the study directory records finished stages, so ``resume`` continues where the
driver died. With tracking, the staged study is one MLflow parent run and each stage's study
run is its child. The plan itself (stage specs, plateau rule) is in ``staged_plan.py``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lora_hpo.files.file_names import STAGED_STATE
from lora_hpo.files.small_files import read_text, write_text
from lora_hpo.search.strategies.staged_plan import gain, plateau, ranks, stage1_spec, stage2_spec
from lora_hpo.search.study_context import StudyContext
from lora_hpo.search.study_result import StudyResult, rank_trials
from lora_hpo.search.study_storage import study_dir, write_spec
from lora_hpo.search.tune_study import can_restore, run_one
from lora_hpo.spec.spec_schema import StudySpec

# A stage runner takes a stage's spec and returns its best metric (None when nothing ranked).
StageRunner = Callable[[StudySpec], float | None]
Say = Callable[[str], None]


@dataclass
class StagedState:
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names the MLflow parent run
    scores: dict[int, float] = field(default_factory=dict)  # stage 1: rank -> best metric
    plateau_rank: int | None = None
    decision: str = ""
    stage2_best: float | None = None
    done: bool = False

    @classmethod
    def load(cls, path: str | Path) -> StagedState:
        text = read_text(path)
        if text is None:
            return cls()
        raw = json.loads(text)
        raw["scores"] = {int(k): v for k, v in raw["scores"].items()}
        return cls(**raw)

    @classmethod
    def ensure(cls, path: str | Path) -> StagedState:
        """The saved state, or a fresh one written now (so its key survives a crash)."""
        if read_text(path) is None:
            cls().save(path)
        return cls.load(path)

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps(dataclasses.asdict(self), indent=2))


def _plateau_decision(spec: StudySpec, state: StagedState, r: int, previous: int, g: float) -> str:
    st, metric = spec.search.staged, spec.metric
    chosen = plateau(state.scores, st.plateau_tolerance, spec.mode)
    change = (
        f"improved {metric} by only {g:.1%}" if g > 0 else f"did not improve {metric} ({g:+.1%})"
    )
    return (
        f"rank plateau at r={chosen}: r={r} {change} over r={previous}"
        f" (tolerance {st.plateau_tolerance:.1%})"
    )


def run_stage1(
    spec: StudySpec, run: StageRunner, state: StagedState, save: Callable[[], None], say: Say
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
                state.decision = _plateau_decision(spec, state, r, previous, g)
                return plateau(state.scores, st.plateau_tolerance, mode)
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
    spec: StudySpec, run: StageRunner, state_path: str | Path, say: Say = print
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


def stage_score(result: StudyResult, rank_sweep: bool) -> float | None:
    """A stage's best value under the shared ranking rule. In the rank sweep only completed
    trials count, so that every rank is judged at the same (last) step: ASHA stops a trial
    at a rung, and a value at step 20 is not comparable with one at step 40."""
    pool = [t for t in result.trials if t.status == "completed"] if rank_sweep else result.trials
    top = rank_trials(result.spec, pool)
    return float(top[0].metrics[result.spec.metric]) if top else None


def run(spec: StudySpec, ctx: StudyContext, restore: bool, say: Say = print) -> StudyResult:
    """Run (or continue: the state file decides, so ``restore`` changes nothing) a staged
    study; returns stage 2's result with the plateau decision."""
    where = study_dir(ctx.storage, spec.name)
    write_spec(spec, where)  # so ``resume NAME`` finds it
    state_path = f"{where}/{STAGED_STATE}"
    state = StagedState.ensure(state_path)
    parent = ctx.tracking.open_parent(spec, state.key) if ctx.tracking else None
    results: dict[str, StudyResult] = {}

    last_stage = stage2_spec(spec, 0).name

    def run_stage(stage: StudySpec) -> float | None:
        again = can_restore(study_dir(ctx.storage, stage.name))
        callbacks = ctx.callbacks_for(stage, parent)
        result = run_one(stage, ctx.storage, callbacks, ctx.execution(stage), restore=again)
        results[stage.name] = result
        return stage_score(result, rank_sweep=stage.name != last_stage)

    state = run_staged(spec, run_stage, state_path, say)
    if ctx.tracking is not None:
        ctx.tracking.close_parent(state)
    final = results[stage2_spec(spec, state.plateau_rank or 0).name]
    final.decision = state.decision
    final.earlier = [t for r in results.values() if r is not final for t in r.trials]
    return final
