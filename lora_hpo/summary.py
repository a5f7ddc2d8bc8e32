"""The end-of-study summary: top configs, counts by status, where the best adapter is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lora_hpo.table import format_table

if TYPE_CHECKING:
    from lora_hpo.tuner import StudyResult

STATUS_ORDER = ("completed", "stopped_early", "diverged", "failed", "running", "pending")


def render(result: StudyResult, top: int = 5) -> str:
    spec = result.spec
    header = [
        "rank",
        spec.metric,
        "step",
        "r",
        "alpha",
        "rsLoRA",
        "lr",
        "scale",
        "trainable",
        "status",
    ]
    rows = []
    ranked = [t for t in result.trials if spec.metric in t.metrics][:top]
    for i, t in enumerate(ranked, 1):
        p, m = t.params, t.metrics
        value = m.get(f"{spec.metric}_raw", m[spec.metric])
        rows.append(
            [
                i,
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
        )
    counts = ", ".join(f"{result.counts[s]} {s}" for s in STATUS_ORDER if s in result.counts)
    lines = [
        f"study {spec.name!r}: {len(result.trials)} trials in {result.wall_s:.0f} s ({counts})",
        "",
        format_table(header, rows) if rows else "no trial reported a result",
        "",
    ]
    if result.decision:
        lines.append(f"staged: {result.decision}")
    if result.best is not None and result.best.checkpoint:
        lines.append(f"best adapter: {result.best.checkpoint}")
    lines.append(f"study directory: {result.path}")
    return "\n".join(lines)
