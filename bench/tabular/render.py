"""The "Search quality on the tabular benchmark" section of bench/RESULTS.md, as ``tabular.md``
in the output folder (``bench.results_md.compose`` joins it), from the simulator's JSON.

    python -m bench.tabular.render [JSON] [MD]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.tabular.summary import FRACTIONS

FIGURES = Path(__file__).resolve().parent / "figures"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def _cell(at: dict[str, Any]) -> str:
    return f"{_num(at['median'])} [{_num(at['q25'])}, {_num(at['q75'])}]"


def _table_part(result: dict[str, Any]) -> list[str]:
    t = result["table"]
    sessions = t.get("sessions") or []
    wall = sum(s.get("wall_s", 0) for s in sessions) / 60
    first = sessions[0] if sessions else {}
    machine = first.get("machine", {})
    v = first.get("versions", {})
    rates = ", ".join(f"{k} {r} steps/s" for k, r in (t.get("step_rate") or {}).items())
    return [
        f"The table: {t['rows']} rows (one per trial and eval step), complete: {t['complete']};"
        f" recorded in {wall:.0f} min over {len(sessions)} session(s) with 2 workers of one"
        f" torch thread each, on {machine.get('nproc', '?')} cores"
        f" ({machine.get('cpu_model', '?')});"
        f" step rate (median of the completed trials, one thread): {rates or 'n/a'}."
        f" torch {v.get('torch', '?')}, transformers {v.get('transformers', '?')},"
        f" peft {v.get('peft', '?')}, optuna {v.get('optuna', '?')}.",
        "",
    ]


def _method_rows(t: dict[str, Any]) -> list[str]:
    head = " | ".join(f"{k} ({t['methods'][next(iter(t['methods']))]['at'][k]['trial_steps']})"
                      for k in FRACTIONS)  # fmt: skip
    out = [
        f"| method | {head} | trial-steps to random's final median | oracle found | trials |",
        "|---|" + "---|" * (len(FRACTIONS) + 3),
    ]
    order = sorted(t["methods"], key=lambda v: (v.partition("+")[2], v))
    default = t.get("default_method", "tpe+asha")
    for v in order:
        m = t["methods"][v]
        cells = " | ".join(_cell(m["at"][k]) for k in FRACTIONS)
        steps = m["steps_to_random_best"]
        mark = " **(default)**" if v == default else ""
        out.append(
            f"| {m['label']}{mark} | {cells} | {steps if steps is not None else 'not reached'}"
            f" | {m['oracle_found_share']:.0%} | {m['trials_mean']:.0f} |"
        )
    return out


def _goal_lines(t: dict[str, Any]) -> list[str]:
    g = t["goals"]
    if not g:
        return []
    a, b = g["a"], g["b"]
    reached = a["trial_steps"] if a["trial_steps"] is not None else "no budget within B"
    name = t["methods"][t.get("default_method", "tpe+asha")]["label"]
    out = [
        f"- (a) {'met' if a['met'] else 'missed'}: {name} (the shipped default) reaches random"
        f" search's final median best at {reached}"
        f" trial-steps; a third of random's budget is {a['third']:.0f}"
        + (
            f", a fifth {g['a5']['fifth']:.0f} ({'met' if g['a5']['met'] else 'missed'})."
            if "a5" in g
            else "."
        ),
        f"- (b) {'met' if b['met'] else 'missed'}: at B its median regret is"
        f" {_num(b['median_regret_at_B'])} against the tutorial default's"
        f" {_num(b['default_regret'])}"
        f" (first budget where the median beats it: {b['first_budget_beating_default']}).",
    ]
    if "gap" in g:
        gap = g["gap"]
        out.append(
            f"- At equal compute (one full trial in each of the two slots, {gap['trial_steps']}"
            f" trial-steps: the tutorial default is one trial) its median regret is"
            f" {_num(gap['median_regret'])} against the tutorial default's"
            f" {_num(gap['default_regret'])}."
        )
    return out


def _headline(result: dict[str, Any]) -> list[str]:
    """Per task: the goals met or missed and the best method, in one line each."""
    out = ["| task | the shipped default | at random's final median within B/3 | within B/5"
           " | beats the tutorial default at B | best method |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for task, t in result["tasks"].items():
        g = t["goals"]
        if not g:
            continue
        a = f"{'met' if g['a']['met'] else 'missed'} ({g['a']['trial_steps'] or 'not reached'}"
        a += f" of {g['a']['random_trial_steps']} trial-steps)"
        a5 = ("met" if g["a5"]["met"] else "missed") if "a5" in g else "–"
        b = "met" if g["b"]["met"] else "missed"
        name = task + (" (held out)" if t.get("held_out") else "")
        default = t["methods"][t.get("default_method", "tpe+asha")]["label"]
        best = t["methods"][t["best_method"]]["label"]
        out.append(f"| {name} | {default} | {a} | {a5} | {b} | {best} |")
    return [*out, ""]


ABLATION = (  # (variant, what it is): the default, then each part taken away or swapped
    ("lora+curve", "the shipped default: prior + incumbent + random draws, curve stopping"),
    ("lora", "without early stopping"),
    ("lora+asha", "ASHA instead of the curve stopper"),
    ("lora_prior_only+curve", "no incumbent draws"),
    ("lora_prior_only", "no incumbent draws, no early stopping"),
    ("lora_no_prior", "no prior (incumbent + random draws), no early stopping"),
    ("random+curve", "random search, curve stopping"),
    ("random", "random search"),
)


def _ablation(result: dict[str, Any]) -> list[str]:
    """Per task, trial-steps to random's final median best for the default and each variant
    with one part taken away; "–" where the variant was not simulated."""
    tasks = result["tasks"]
    if not any("lora+curve" in t["methods"] for t in tasks.values()):
        return []
    names = [f"{k} (held out)" if t.get("held_out") else k for k, t in tasks.items()]
    out = [
        "Ablation: trial-steps until each variant reaches random search's final median best"
        " (median over the seeds; –: not simulated; not reached: not within B), and the"
        " budget B:",
        "",
        f"| variant | {' | '.join(names)} |",
        "|---|" + "---|" * len(names),
    ]
    for variant, what in ABLATION:
        cells = []
        for t in tasks.values():
            m = t["methods"].get(variant)
            steps = None if m is None else m["steps_to_random_best"]
            cells.append("–" if m is None else str(steps) if steps is not None else "not reached")
        out.append(f"| {what} (`{variant}`) | {' | '.join(cells)} |")
    out.append(f"| B | {' | '.join(str(t['budget']) for t in tasks.values())} |")
    return [*out, ""]


def task_part(task: str, t: dict[str, Any], figures: list[str]) -> list[str]:
    o, d = t["oracle"], t["default"]
    held = (
        " **Held out**: recorded while the default was designed on the other tasks, kept out of"
        " every design choice, simulated once after the design was committed, and reported as"
        " it came."
        if t.get("held_out")
        else ""
    )
    lines = [
        f"### {task}: {t['title']}" + (" (held out)" if t.get("held_out") else ""),
        "",
        f"{t['configs']} configs, {t['max_steps']} steps each; metric {t['metric']} ({t['mode']});"
        f" ASHA grace {t['asha']['grace_period']}, reduction factor"
        f" {t['asha']['reduction_factor']}. Oracle: {o['config']} ({_num(o['value'], 4)}). Tutorial"
        f" default {d['config']}: {_num(d['value'], 4)}, regret {_num(d['regret'])}."
        f" Budget B = {t['budget']} trial-steps. Best method (median regret at B, then over the"
        f" whole curve): **{t['methods'][t['best_method']]['label']}**.{held}",
        "",
        "Simple regret, median [IQR] over seeds, at fractions of B (trial-steps in brackets):",
        "",
        *_method_rows(t),
        "",
        *_goal_lines(t),
        "",
    ]
    lines += [f"![{Path(f).stem}]({f})" for f in figures if task in Path(f).name]
    return [*lines, ""]


def section(result: dict[str, Any], figures: list[str]) -> str:
    s = result["settings"]
    lines = [
        "## Search quality on the tabular benchmark",
        "",
        "Every grid point (r x α/r x rsLoRA x lr) of each task trained once for real"
        " (`python -m bench.tabular.record`); the searchers replayed on that table"
        f" (`python -m bench.tabular.simulate`) over {s['seeds']} seeds through the real Optuna"
        " samplers and Ray Tune's own ASHA scheduler, two trials at once, reports in the order"
        " of their recorded step times. Budget: trial-steps;"
        f" random search gets B = {s['budget_trials']} full trials. Simple regret: the oracle's"
        " final value minus the value of the best trial by lora-hpo's ranking rule, counting"
        " a trial once it ends (a stopped trial by its value at the stop; it can beat the"
        " oracle's final value, so regret can be negative). Sampled configs snap to the nearest"
        " grid point; staged runs its rank sweep (3 trials per rank), then stage 2 until B.",
        "",
        *_table_part(result),
        *_headline(result),
        *_ablation(result),
    ]
    lines += [f"Note: {n}" for n in result.get("notes", [])] + [""] * bool(result.get("notes"))
    for task, t in result["tasks"].items():
        lines += task_part(task, t, figures)
    lines.append(
        "Limits: one training seed per config, so the table's noise is frozen into it. The"
        " eval sets are small: MiniLM's accuracy on 200 examples has a binomial standard error"
        " of about 0.02 near 0.9, so its top configs are within noise of each other; SmolLM2's"
        " loss is over the answer tokens of 16 examples. Continuous samples snap to the grid,"
        " so a sampler that concentrates repeats configs it has already run."
    )
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], figures: list[Path], dst: Path) -> Path:
    """The section; figures under bench/ are linked from bench/ (where RESULTS.md is), others
    by name (beside the section)."""
    bench = Path(__file__).resolve().parents[1]
    names = []
    for f in figures:
        full = f.resolve()
        names.append(str(full.relative_to(bench)) if full.is_relative_to(bench) else f.name)
    dst.write_text(section(result, names))
    return dst


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/out/tabular/tabular.json")
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_name("tabular.md")
    # the PNGs beside the JSON (a fresh run), else the committed ones
    figures = sorted(src.parent.glob("*.png")) or sorted(FIGURES.glob("*.png"))
    write(json.loads(src.read_text()), figures, dst)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
