"""P1's arithmetic and its tables: a run's figures per slot (``phases``), the median run, and
the Markdown section (``render``). ``p1.py`` runs the studies and collects the figures."""

from __future__ import annotations

import math
from typing import Any

from bench import machine

AIMS = {"quickstart": 1.25, "long": 1.15}
QUICKSTART_AIMS = {"command_s": 180.0, "best": 0.90, "stopped": 1}  # issue 15, item 4
IN_TRIAL = ("time_in_eval_s", "time_in_save_s", "time_in_report_s")  # from each last report
LEAD = ("lead_before_worker_s", "lead_worker_boot_s")  # the lead, split (p1.lead_split)
BOOT_BEFORE = "boot_before_study_s"  # the first workers' boot before the study (p1.lead_split)


def phases(run: dict[str, Any], concurrency: int) -> dict[str, float]:
    """The run's figures per slot (divided by the concurrency), and P1: its training counted in
    slot-seconds (a step on a lent, idle slot's threads too counts 2 slots), and counted as
    the steps' wall time."""
    step, start = run["step_s"] / concurrency, run["start_s"] / concurrency
    slots = run.get("step_slot_s", run["step_s"]) / concurrency
    inside = run["trainable_s"] / concurrency
    return {
        "p1": run["study_s"] / slots,
        "p1_wall_steps": run["study_s"] / step,
        "p1_command": run["command_s"] / slots,
        "slot_s": slots,
        "step_s": step,
        "start_s": start,
        "between_s": inside - step - start,
        "gaps_s": run["study_s"] - inside,
        **{k: run.get(k, math.nan) / concurrency for k in IN_TRIAL},
        **{f"idle_{k}_s": v / concurrency for k, v in run.get("idle_s", {}).items()},
        **{k: run.get(k, math.nan) / concurrency for k in (*LEAD, BOOT_BEFORE)},
        "steps_per_s": run["steps"] / run["step_s"] if run["step_s"] else float("nan"),
    }


def median_run(runs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """The run whose P1 is the median (an odd count; the lower middle one otherwise)."""
    ranked = sorted(runs, key=lambda r: phases(r, concurrency)["p1"])
    return ranked[(len(ranked) - 1) // 2]


def render(results: dict[str, Any]) -> str:
    conc = results["concurrency"]
    lines = [
        "## Framework overhead, P1 (`python -m bench.overhead.p1`)",
        "",
        f"{machine.provenance(results)}, load before {results['load_before'][0]:.2f}"
        f"{_run_loads(results)}. Each study is `lora-hpo run "
        f"search_spaces/quickstart.yaml` (with the `--set` shown) in a fresh process and working "
        f"directory, {conc} trials at once, MLflow on its embedded default. "
        "P1 = study wall ÷ (Σ in-step training time ÷ concurrency); the median of the repeats. "
        "A trial that runs on an idle slot's lent threads (the study's tail) spends 2 slots a "
        "step, so its in-step time counts in slot-seconds (each report's `step_slot_time_s`); "
        "the column after P1 counts the steps' wall time instead." + _refigured(results),
        "",
        *(f"Note: {n}\n" for n in results.get("notes", [])),
        "| study | aim | P1 (median) | P1 of each run | the median run, steps' wall time | "
        "command wall ÷ training | in-study steps/s | load during (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_figure_row(name, study, conc) for name, study in results["studies"].items()]
    lines += [
        "",
        "Per slot, in the median run (seconds; start, between and gaps are defined in "
        "`bench/overhead/p1.py`):",
        "",
        "| study | `--set` | trials | study wall | command wall | training | start | between "
        "| gaps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_phase_row(name, study, conc) for name, study in results["studies"].items()]
    lines += _split_table(results) + _why_lines(results) + _quickstart_lines(results)
    return "\n".join(lines) + "\n"


def _why_lines(results: dict[str, Any]) -> list[str]:
    """For each missed aim, what P1 would be without the idle slot time, and with nothing but
    training and evaluation: how far each phase stands between the study and its aim."""
    conc, out = results["concurrency"], []
    for name, study in results["studies"].items():
        p = phases(study["median"], conc)
        idle = p.get("idle_lead_s", math.nan) + p.get("idle_between_s", 0) + p.get("idle_tail_s", 0)
        if p["p1"] <= AIMS[name] or math.isnan(idle):
            continue
        idle -= p["slot_s"] - p["step_s"]  # a tail slot whose threads were lent is not idle
        no_idle = (study["median"]["study_s"] - idle) / p["slot_s"]
        floor = (p["slot_s"] + p["time_in_eval_s"]) / p["slot_s"]
        out.append(
            f"- {name}, P1 {p['p1']:.2f} against ≤ {AIMS[name]}: without its idle slot time "
            f"({idle:.1f} s per slot, net of the threads lent at the tail; the lead is "
            f"{p['idle_lead_s']:.1f} s of it, worker boot {p['lead_worker_boot_s']:.1f} s) it "
            f"would be {no_idle:.2f}; training and evaluation alone "
            f"({p['time_in_eval_s']:.1f} s per slot, at ASHA's rungs and each trial's last "
            f"step) give {floor:.2f}. The rest is each trial's start ({p['start_s']:.1f} s per "
            "slot: model and data load) and its checkpoints and reports."
        )
    return ["", "Why an aim is missed, from the same median runs:", "", *out] if out else []


def _quickstart_lines(results: dict[str, Any]) -> list[str]:
    """The quickstart command as a user runs it: its wall, best accuracy and ASHA's stops in
    each run, beside their aims (runs from before these were recorded have none)."""
    study = results["studies"].get("quickstart")
    if study is None or study["sets"] or not all("best" in r for r in study["runs"]):
        return []
    runs, aims = study["runs"], QUICKSTART_AIMS
    walls = [r["command_s"] for r in runs]
    best = [r["best"] for r in runs]
    stopped = [r["stopped"] for r in runs]
    rate = phases(study["median"], results["concurrency"])["steps_per_s"]
    metric = study.get("metric", "eval_accuracy")  # the quickstart's; recorded after 7ff4dd5

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    return [
        "",
        "The quickstart command, `lora-hpo run search_spaces/quickstart.yaml` (these same "
        "runs, timed from outside the process):",
        "",
        "| figure | aim | each run | verdict |",
        "|---|---|---|---|",
        f"| command wall (s) | ≤ {aims['command_s']:.0f} | "
        f"{', '.join(f'{w:.0f}' for w in walls)} | {verdict(max(walls) <= aims['command_s'])} |",
        f"| best {metric} | ≥ {aims['best']:.2f} | "
        f"{', '.join(f'{b:.3f}' for b in best)} | {verdict(min(best) >= aims['best'])} |",
        f"| trials stopped by ASHA | ≥ {aims['stopped']} | "
        f"{', '.join(str(s) for s in stopped)} of {runs[0]['trials']} | "
        f"{verdict(min(stopped) >= aims['stopped'])} |",
        "",
        f"The machine's step rate for scale: {rate:.2f} steps/s per trial in the median run "
        "(batch 16 × 32 tokens; one thread a trial, two on a lent slot).",
    ]


def _run_loads(results: dict[str, Any]) -> str:
    """Each run's 1-minute load at its start (the bench waits for it to fall below 0.5), and
    bitsandbytes' presence (peft imports it at every worker's boot when it is installed)."""
    loads = [r["load_before"][0] for s in results["studies"].values() for r in s["runs"]]
    bnb = results.get("versions", {}).get("bitsandbytes")
    return f", each run at 1-minute load {min(loads):.2f} to {max(loads):.2f} when it began" + (
        f"; bitsandbytes {bnb}" if bnb else ""
    )


def _refigured(results: dict[str, Any]) -> str:
    at = results.get("refigured_at")
    if not at:
        return ""
    return (
        f" The trial figures were recomputed from the same runs' study folders at commit "
        f"{at['commit']}{' (with changes)' if at['dirty'] else ''} "
        "(`python -m bench.overhead.p1 --refigure`)."
    )


def _split_table(results: dict[str, Any]) -> list[str]:
    """The median runs' between and gaps, split (runs from before the split have none)."""
    if not all("idle_s" in s["median"] for s in results["studies"].values()):
        return []
    lines = [
        "",
        "The same run's between and gaps, split (seconds per slot; the idle split is "
        "measured from the trials' start and last-report times, so it may differ from gaps "
        "by a second):",
        "",
        "| study | eval | checkpoint save | report | idle: lead | of it: before the worker "
        "process | of it: worker boot | idle: between trials | idle: tail | worker boot before "
        "the study |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    conc = results["concurrency"]
    return lines + [_split_row(n, study, conc) for n, study in results["studies"].items()]


def _split_row(name: str, study: dict[str, Any], conc: int) -> str:
    p = phases(study["median"], conc)
    keys = [*IN_TRIAL, "idle_lead_s", *LEAD, "idle_between_s", "idle_tail_s", BOOT_BEFORE]
    return f"| {name} | " + " | ".join(_cell(p[k]) for k in keys) + " |"


def _cell(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def _figure_row(name: str, study: dict[str, Any], conc: int) -> str:
    each = [phases(r, conc) for r in study["runs"]]
    med = phases(study["median"], conc)
    met = "met" if med["p1"] <= AIMS[name] else "missed"
    loads = ", ".join(f"{r['load_during']['mean']:.2f}" for r in study["runs"])
    p1s = ", ".join(f"{p['p1']:.2f}" for p in each)
    return (
        f"| {name} | ≤ {AIMS[name]} | **{med['p1']:.2f}** ({met}) | {p1s} | "
        f"{med['p1_wall_steps']:.2f} | {med['p1_command']:.2f} | {med['steps_per_s']:.2f} | "
        f"{loads} |"
    )


def _phase_row(name: str, study: dict[str, Any], conc: int) -> str:
    run, p = study["median"], phases(study["median"], conc)
    sets = " ".join(f"`{s}`" for s in study["sets"]) or "(none)"
    return (
        f"| {name} | {sets} | {run['trials']} | {run['study_s']:.0f} | "
        f"{run['command_s']:.0f} | {p['step_s']:.1f} | {p['start_s']:.1f} | "
        f"{p['between_s']:.1f} | {p['gaps_s']:.1f} |"
    )
