"""The "## Search quality" section of bench/RESULTS.md: per task its setup, a table of
the methods and what the numbers show, then the caveats."""

from __future__ import annotations

import statistics
from typing import Any

from bench.search_quality.settings import DEFAULT, METHODS, SHORT


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def metric_digits(mode: str) -> int:
    return 3 if mode == "max" else 4


def fmt_config(c: dict[str, Any] | None) -> str:
    if not c:
        return "—"
    rs = "on" if c["use_rslora"] else "off"
    return (
        f"r={c['r']}, α={c['lora_alpha']:.3g} (α/r {c['alpha_ratio']:.3g}), rsLoRA {rs},"
        f" lr {c['learning_rate']:.2e}"
    )


def fmt_param(name: str, value: Any) -> str:
    """One search-space parameter as written in the spec, in words."""
    if isinstance(value, dict) and "choices" in value:
        return f"{name} ∈ {{{', '.join(str(v) for v in value['choices'])}}}"
    if isinstance(value, dict):
        log = " (log)" if value.get("log") else ""
        return f"{name} ∈ [{value['low']:g}, {value['high']:g}]{log}"
    return f"{name} = {value}"


def setup_lines(task: str, entry: dict[str, Any]) -> list[str]:
    s, specs = entry["settings"], entry["specs"]
    raw = specs.get("random") or next(iter(specs.values()))
    d, t = raw["data"], raw["training"]
    lines = [
        f"- Task: {s['title']}; model demo `{raw['model']['demo']}`, data demo"
        f" `{d['demo']}`; seq {d['max_length']}, batch {t['batch_size']}, {s['max_steps']} steps"
        f" per trial, eval every {t['eval_every']} steps on {d['max_eval_samples']} held-out"
        f" examples; {s['concurrency']} trials at once, {s['cpu']} CPU each. Metric:"
        f" {s['metric']} ({s['mode']}).",
        "- Space (random, TPE + ASHA): "
        + "; ".join(fmt_param(k, v) for k, v in specs.get("random", raw)["space"].items())
        + ".",
        f"- Budget B = {s['random_trials']} trials × {s['max_steps']} steps ="
        f" {s['budget']} trial-steps (random search). TPE + ASHA: {s['tpe_samples']} samples,"
        f" ASHA grace {s['scheduler']['grace_period']} steps, reduction factor"
        f" {s['scheduler']['reduction_factor']}. Staged: {staged_words(specs)}. The default:"
        f" one trial, {s['max_steps']} trial-steps.",
        f"- The tutorial default (r={DEFAULT['r']}, α={DEFAULT['lora_alpha']:g}, rsLoRA off, lr"
        f" {DEFAULT['learning_rate']:g}; the task's other settings) {default_place(entry)}.",
    ]
    return lines


def default_place(entry: dict[str, Any]) -> str:
    outside = entry.get("default_outside_space")
    if outside is None:
        return "was not compared with the space"
    if not outside:
        return "lies inside the searched space"
    return "lies outside the searched space in: " + ", ".join(outside)


def staged_words(specs: dict[str, Any]) -> str:
    if "staged" not in specs:
        return "not run"
    st = specs["staged"]["search"]["staged"]
    return (
        f"r from {st['r_min']} doubling to {st['r_max']}, {st['samples_per_rank']} trial(s) per"
        " rank,"
        f" plateau tolerance {st.get('plateau_tolerance', 0.01):g}, then"
        f" {st['stage2_samples']} trials over α/r (α/√r with rsLoRA) in"
        f" [{st.get('ratio_low', 0.5):g}, {st.get('ratio_high', 4.0):g}] and lr; ASHA as above"
    )


def table(entry: dict[str, Any]) -> list[str]:
    s = entry["settings"]
    digits, seeds = metric_digits(s["mode"]), seeds_of(entry)
    rows = [
        f"| method | best {s['metric']} within B | best at the end | trial-steps (within B /"
        " total) | wall s (at B / total) | trials (within B / total) | best config within B |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, runs in entry["runs"].items():
        for seed, run in runs.items():
            f, part = run["figures"], run["part"]
            label = METHODS[method] + (f" (seed {seed})" if len(seeds) > 1 else "")
            steps = f"{f['trial_steps_within_budget']} / {f['trial_steps_total']}"
            if method == "default":
                steps += f" (one trial: {f['trial_steps_total']} of B = {s['budget']})"
            wall = f"{fmt(f['t_at_budget_s'], 0)} / {part['study_wall_s']:.0f}"
            cells = [
                label,
                fmt(f["best_within_budget"], digits),
                fmt(f["best_at_end"], digits),
                steps,
                wall,
                f"{f['trials_within_budget']} / {f['trials_total']}",
                fmt_config(f["best_config_within_budget"]),
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def seeds_of(entry: dict[str, Any]) -> list[str]:
    return sorted({seed for runs in entry["runs"].values() for seed in runs}, key=int)


def ranked(entry: dict[str, Any], seed: str, key: str) -> list[tuple[str, float]]:
    """(method, value) best first, for the methods that have a value at this seed."""
    mode = entry["settings"]["mode"]
    got = [
        (m, runs[seed]["figures"][key])
        for m, runs in entry["runs"].items()
        if seed in runs and runs[seed]["figures"][key] is not None
    ]
    return sorted(got, key=lambda mv: -mv[1] if mode == "max" else mv[1])


def seed_sentence(entry: dict[str, Any], seed: str) -> str:
    """What one seed's numbers show: the order within B, the gap to the default, the ends."""
    s = entry["settings"]
    digits = metric_digits(s["mode"])
    order = ranked(entry, seed, "best_within_budget")
    if not order:
        return f"Seed {seed}: no method reported {s['metric']}."
    top = order[0][1]
    first = [SHORT[m] for m, v in order if v == top]
    lead = f"{first[0]}'s" if len(first) == 1 else f"a tie between {' and '.join(first)}"
    listed = ", ".join(f"{SHORT[m]} {v:.{digits}f}" for m, v in order)
    text = (
        f"Seed {seed}: within B = {s['budget']} trial-steps the best {s['metric']} was {lead}"
        f" ({top:.{digits}f}); in order: {listed}."
    )
    runs = entry["runs"]
    default = runs.get("default", {}).get(seed, {}).get("figures", {})
    if default.get("best_within_budget") is not None and order[0][0] != "default":
        d, steps = default["best_within_budget"], default["trial_steps_total"]
        text += (
            f" That is {abs(top - d):.{digits}f} {'above' if top > d else 'below'} the tutorial"
            f" default's {d:.{digits}f}, which used {steps} trial-steps (one trial)."
        )
    ends = [
        f"{SHORT[m]} {r[seed]['figures']['trial_steps_total']} trial-steps, best"
        f" {fmt(r[seed]['figures']['best_at_end'], digits)}"
        for m, r in runs.items()
        if m in ("tpe_asha", "staged") and seed in r
    ]
    if ends:
        text += " Run to their end: " + "; ".join(ends) + "."
    return text


def staged_sentence(entry: dict[str, Any], seed: str) -> str | None:
    """How the staged study spent its budget: the rank decision and trials per stage within B."""
    run = entry["runs"].get("staged", {}).get(seed)
    if run is None:
        return None
    within = {p["trial"] for p in run["curve"] if p["trial_steps"] <= entry["settings"]["budget"]}
    stage2 = sum(1 for t in within if t.split("/")[0].endswith("-stage2"))
    best = run["figures"]["best_trial_within_budget"]
    where = "stage 2" if best and best.split("/")[0].endswith("-stage2") else "stage 1"
    decision = run["part"].get("decision") or "no decision recorded"
    return (
        f"Staged (seed {seed}): {decision}. Within B it ran {len(within) - stage2} stage-1 and"
        f" {stage2} stage-2 trials; its best within B came from {where}."
    )


def shared_draws(entry: dict[str, Any], seed: str) -> str | None:
    """How many of random search's configs TPE + ASHA also trained (same seed: Optuna's TPE
    draws its first trials at random, from the same generator)."""
    runs = entry["runs"]
    if seed not in runs.get("random", {}) or seed not in runs.get("tpe_asha", {}):
        return None

    def keys(run: dict[str, Any]) -> set[tuple[Any, ...]]:
        return {
            tuple(round(float(v), 9) for v in t["config"].values()) for t in run["trials"].values()
        }

    rnd, tpe = keys(runs["random"][seed]), keys(runs["tpe_asha"][seed])
    return (
        f"Seed {seed}: {len(rnd & tpe)} of random search's {len(rnd)} configs were also among"
        f" TPE + ASHA's {len(tpe)} trials (same sampler seed; TPE starts with random draws)."
    )


def seeds_summary(entry: dict[str, Any]) -> str:
    """Across seeds: the mean best within B per method and how often each was first."""
    seeds, digits = seeds_of(entry), metric_digits(entry["settings"]["mode"])
    if len(seeds) == 1:
        return (
            "One seed: every figure is a single run (rerun with `--seeds 0,1,2` to see the spread)."
        )
    wins = {m: 0 for m in entry["runs"]}
    for seed in seeds:
        order = ranked(entry, seed, "best_within_budget")
        if order:
            wins[order[0][0]] += 1
    means = []
    for m, runs in entry["runs"].items():
        vals = [r["figures"]["best_within_budget"] for r in runs.values()]
        vals = [v for v in vals if v is not None]
        if vals:
            means.append(f"{SHORT[m]} {statistics.mean(vals):.{digits}f} (first {wins[m]}×)")
    return f"Over {len(seeds)} seeds, mean best within B: " + "; ".join(means) + "."


def resolution(entry: dict[str, Any]) -> str | None:
    """One eval example's share of accuracy: differences of a few of them are noise-sized."""
    s, spec = entry["settings"], next(iter(entry["specs"].values()))
    n = spec["data"].get("max_eval_samples")
    if s["metric"] != "eval_accuracy" or not n:
        return None
    return f"One of the {n} eval examples is {1 / n:.3f} of accuracy."


def findings(entry: dict[str, Any]) -> str:
    sentences: list[str | None] = []
    for seed in seeds_of(entry):
        sentences += [seed_sentence(entry, seed), staged_sentence(entry, seed)]
        sentences.append(shared_draws(entry, seed))
    sentences += [resolution(entry), seeds_summary(entry)]
    return " ".join(x for x in sentences if x)


def caveats(data: dict[str, Any]) -> list[str]:
    loads = [
        x
        for entry in data["tasks"].values()
        for runs in entry["runs"].values()
        for run in runs.values()
        for x in (*run["part"]["load_before"], *run["part"]["load_after"])
    ]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"
    return [
        f"- Load averages before and after the methods ranged {load} on"
        f" {data['machine']['nproc']} CPUs; wall times carry that noise, trial-steps do not.",
        "- Trial-steps count each trial's last reported step: a trial that ASHA stops may train"
        " a step past its last report before it sees the stop. Wall s runs from the `run_study`"
        " call (Ray's start included) to the last report within B, and to the study's end; the"
        " process's imports are not counted (the JSON has them as process_wall_s).",
        "- Metrics are the raw reported values (`<metric>_raw`), so a diverged trial counts with"
        " what it measured, not with the penalty its searcher got.",
    ]


def render_section(data: dict[str, Any]) -> str:
    """The "## Search quality" section of RESULTS.md: per task a setup, a table and findings."""
    lines = [
        "## Search quality",
        "",
        "Four ways of choosing LoRA hyperparameters at equal compute, measured in trial-steps"
        " (training steps summed over trials). Generated by `python -m bench.search_quality`"
        f" (`{data['command']}`, mode {data['mode']}, {data['date']}, git {data['git']['commit']}"
        f"{' with uncommitted changes' if data['git']['dirty'] else ''}).",
    ]
    for task, entry in data["tasks"].items():
        lines += ["", f"### {task}", "", *setup_lines(task, entry), "", *table(entry)]
        lines += ["", findings(entry)]
    lines += ["", "Caveats:", "", *caveats(data)]
    return "\n".join(lines) + "\n"
