"""The end-of-study summary: top configs (the shared ranking), counts by status, where the best
adapter is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lora_hpo.cli.text_table import format_table

if TYPE_CHECKING:
    from lora_hpo.search.study_result import StudyResult, TrialSummary

STATUS_ORDER = ("completed", "stopped_early", "diverged", "failed", "running", "pending")
HEADER = ("rank", "step", "r", "alpha", "rsLoRA", "lr", "scale", "trainable", "status")


def _row(rank: int, t: TrialSummary, metric: str) -> list[Any]:
    p, m = t.params, t.metrics
    value = m.get(f"{metric}_raw", m[metric])
    return [
        rank,
        f"{value:.4f}",
        m.get("step", "-"),
        p["r"],
        f"{p['lora_alpha']:.3g}",
        "yes" if p["use_rslora"] else "no",
        f"{p['learning_rate']:.2e}",
        f"{p['effective_scale']:.3g}",
        f"{int(m.get('trainable_params', 0)):,}",
        t.status,
    ]


def render(result: StudyResult, top: int = 5) -> str:
    from lora_hpo.search.study_result import rank_trials

    spec = result.spec
    header = [HEADER[0], spec.metric, *HEADER[1:]]
    rows = [_row(i, t, spec.metric) for i, t in enumerate(rank_trials(spec, result.trials), 1)]
    counts = ", ".join(f"{result.counts[s]} {s}" for s in STATUS_ORDER if s in result.counts)
    head = f"study {spec.name!r}: {len(result.trials)} trials in {result.wall_s:.0f} s ({counts})"
    if result.stopped:
        head = f"study {spec.name!r}: stopped after {result.wall_s:.0f} s"
    lines = [
        head,
        "",
        format_table(header, rows[:top]) if rows else "no trial reported a result",
        "",
    ]
    if result.failures:
        lines.append("failures:")
        lines += [f"  {f.line()}" for f in result.failures]
    if result.stopped:
        name = spec.name.split("-stage")[0] if "-stage" in spec.name else spec.name
        lines.append(f"{result.stopped}; fix the cause, then: lora-hpo resume {name}")
    if result.decision:
        lines.append(f"staged: {result.decision}")
    if result.best is not None and result.best.checkpoint:
        lines.append(f"best adapter: {result.best.checkpoint}")
    lines.append(f"study directory: {result.path}")
    return "\n".join(lines)
