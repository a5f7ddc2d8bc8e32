"""The peer ratio alone: lora-hpo's wall time over HF ``Trainer.hyperparameter_search`` (Ray
backend) at an identical budget, the same sampled configs and the same ASHA settings (the full
bench's ``lora_same`` and ``peer_ray`` parts, at its settings), side by side in one run.

    python -m bench.overhead.peer_ratio [--repeats 1] [--smoke] [--max-length N] [--out DIR]

Aim: lora-hpo wall / peer wall <= 0.6. Each repeat runs both parts in fresh processes, the
order alternating between repeats; each part (but with --smoke) first waits up to 4 minutes
for the 1-minute load average to fall below 0.5, so that neither side starts on the other's
tail. It writes <out>/peer.json and <out>/peer.md (default bench/out/peer/), with each
study's breakdown (``figures.breakdown``) and the load.

``--max-length N`` runs the same budget at another sequence length (the quickstart's is 32):
cheaper steps, so the time outside them weighs more. It writes peer-lenN.json and
peer-lenN.md instead (default folder bench/out/peer-lenN/).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import machine
from bench.overhead import figures
from bench.overhead.notes import num
from bench.overhead.run import run_part
from bench.overhead.settings import BENCH, MODES, TASK, sample_configs
from bench.results_md import write_section

AIM = 0.6
PARTS = ("lora_same", "peer_ray")


def _title(length: int) -> str:
    command = "python -m bench.overhead.peer_ratio"
    if length == MODES["full"]["max_length"]:
        return f"## Against the peer at an identical budget (`{command}`)"
    return (
        f"## Against the peer at an identical budget, at sequence length {length} "
        f"(`{command} --max-length {length}`)"
    )


def render(r: dict[str, Any]) -> str:
    ratios = r["ratios"]
    med = statistics.median(ratios)
    s = r["settings"]
    starts = [p[n]["part"]["load_before"][0] for p in r["parts"] for n in PARTS]
    lines = [
        _title(s["max_length"]),
        "",
        f"{machine.provenance(r)}, load before {r['load_before'][0]:.2f}; each part began at a "
        f"1-minute load of {min(starts):.2f} to {max(starts):.2f}. Both sides ran "
        f"the same {s['trials']} sampled configs, up to {s['max_steps']} steps, ASHA grace "
        f"{s['grace_period']} and reduction {s['reduction_factor']}, sequence length "
        f"{s['max_length']}, batch {s['batch_size']}, {s['concurrency']} trials at once. "
        "lora-hpo evaluates where its ASHA reads, at the rungs and each trial's last step "
        f"(its default); the peer every {s['eval_every']} steps, since Ray's ASHA counts the "
        "peer's reports, one per evaluation, on a fixed grid.",
        "",
        f"Wall ratio, lora-hpo ÷ `Trainer.hyperparameter_search` (Ray): **{med:.2f}** "
        f"(aim ≤ {AIM}: {'met' if med <= AIM else 'missed'}; each repeat: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}). Each side's wall runs from its own "
        "set-up (model and data load, Ray's start) to the search's end; over whole processes "
        f"(imports too) the ratio is {', '.join(f'{x:.2f}' for x in r['process_ratios'])}.",
        "",
        "| study (repeat) | wall s | trials | trial-steps | in-step s | in-trial other s | "
        "outside trials s | s per step | best acc. | load at start | load during (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rep, studies in enumerate(r["breakdowns"], 1):
        for name, b in studies.items():
            cells = [b["wall_s"], b["trials"], b["trial_steps"], b["in_step_s"]]
            cells += [b["in_trial_other_s"], b["outside_trials_s"]]
            load = r["loads"][rep - 1][name]
            start = r["parts"][rep - 1][name]["part"]["load_before"][0]
            lines.append(
                f"| {name} ({rep}) | "
                + " | ".join(num(c, 1) for c in cells)
                + f" | {num(b['s_per_step'], 3)} | {num(b['best'], 3)} | {start:.2f} | {load:.2f} |"
            )
    return "\n".join(lines + _per_step_lines(r) + _phase_lines(r)) + "\n"


def _median_repeat(r: dict[str, Any]) -> int:
    """The index of the repeat whose wall ratio is the median (the lower one of an even count)."""
    ranked = sorted(range(len(r["ratios"])), key=lambda k: r["ratios"][k])
    return ranked[(len(r["ratios"]) - 1) // 2]


def _phase_lines(r: dict[str, Any]) -> list[str]:
    """Each side's wall in the median repeat, split by phase (``figures.phases``), and what the
    aim would take; nothing for a result recorded before the phases were."""
    median = _median_repeat(r)
    ours, peer = r["breakdowns"][median]["lora_same"], r["breakdowns"][median]["peer_ray"]
    if "phases" not in ours or "phases" not in peer:
        return []
    lines = [
        "",
        f"Where each side's wall went, in the median repeat ({median + 1}): seconds per slot "
        f"(a phase's slot-seconds ÷ {ours['concurrency']} slots), so that each column sums to "
        "its wall.",
        "",
        "| phase | lora-hpo s | peer s | lora-hpo − peer s |",
        "|---|---|---|---|",
    ]
    for key, words in figures.PHASES.items():
        a, b = ours["phases"][key], peer["phases"][key]
        lines.append(f"| {words} | {a:.1f} | {b:.1f} | {a - b:+.1f} |")
    lines.append(
        f"| wall | {ours['wall_s']:.1f} | {peer['wall_s']:.1f} | "
        f"{ours['wall_s'] - peer['wall_s']:+.1f} |"
    )
    target = AIM * peer["wall_s"]
    if ours["wall_s"] <= target:
        return lines
    work = ours["phases"]["training"] + ours["phases"]["eval"]
    rest = ours["wall_s"] - work
    return [
        *lines,
        "",
        f"The aim needs lora-hpo's wall at ≤ {target:.1f} s in this repeat, "
        f"{ours['wall_s'] - target:.1f} s less than it took. Its training and evaluation alone "
        f"take {work:.1f} s, {work / peer['wall_s']:.2f} of the peer's wall; everything else "
        f"(set-up, trial starts, checkpoints and reports, scheduling and idle slots) takes "
        f"{rest:.1f} s.",
    ]


def _per_step_lines(r: dict[str, Any]) -> list[str]:
    per_step = [per_trial_step(b) for b in r["breakdowns"]]
    median = _median_repeat(r)
    ours, peer = r["breakdowns"][median]["lora_same"], r["breakdowns"][median]["peer_ray"]
    floor = ours["in_step_s"] / ours["concurrency"] / peer["wall_s"]
    at = r.get("rendered_at")
    return [
        "",
        "ASHA is asynchronous: which trials it stops depends on the order in which they reach "
        "a rung, so the two sides' trial-steps can differ from the same configs. Wall per "
        "trial-step, lora-hpo ÷ peer, in each repeat: "
        + ", ".join(f"{x:.2f}" for x in per_step)
        + f" (median {statistics.median(per_step):.2f}).",
        "",
        f"The floor, in the median repeat ({median + 1}): lora-hpo's in-step training time "
        f"alone, ÷ concurrency, is {ours['in_step_s'] / ours['concurrency']:.1f} s, "
        f"{floor:.2f} of the peer's wall. Both train through the same transformers Trainer "
        f"steps ({ours['s_per_step']:.3f} against {peer['s_per_step']:.3f} s per step), so the "
        f"ratio cannot fall below {floor:.2f} without faster steps, whatever the overhead."
        + (f" (Words rendered again at {at['commit']}.)" if at else ""),
    ]


def per_trial_step(studies: dict[str, Any]) -> float:
    """The wall ratio at equal work: each side's wall per trial-step it trained."""
    ours, peer = studies["lora_same"], studies["peer_ray"]
    return float((ours["wall_s"] / ours["trial_steps"]) / (peer["wall_s"] / peer["trial_steps"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny settings")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, help="folder for its JSON and section")
    ap.add_argument("--max-length", type=int, help="tokens per example (default: the mode's)")
    ap.add_argument("--render", type=Path, help="write the section again from this JSON")
    args = ap.parse_args()
    if args.render is not None:
        r = json.loads(args.render.read_text()) | {"rendered_at": machine.git_state()}
        write_section(args.render.parent, args.render.stem, r, render(r))
        return
    mode = "smoke" if args.smoke else "full"
    settings = TASK | MODES[mode]
    stem = "peer"
    if args.max_length is not None:
        settings["max_length"], stem = args.max_length, f"peer-len{args.max_length}"
    out = args.out or BENCH / "out" / stem
    settings["configs"] = sample_configs(settings)
    work, logs = out / "work", out / "logs"
    for folder in (work, logs):
        folder.mkdir(parents=True, exist_ok=True)
    (work / "settings.json").write_text(json.dumps(settings, indent=2))
    r = machine.describe(" ".join(["python", "-m", "bench.overhead.peer_ratio", *sys.argv[1:]]))
    conc = settings["concurrency"]
    r |= {"settings": settings, "ratios": [], "process_ratios": [], "breakdowns": [], "loads": []}
    r["parts"] = []
    for rep in range(args.repeats):
        order = PARTS if rep % 2 == 0 else PARTS[::-1]
        parts = {name: run_part(name, work, logs, mode, rep, not args.smoke) for name in order}
        r["parts"].append(parts)
        r["breakdowns"].append({n: figures.breakdown(parts[n], conc) for n in PARTS})
        r["loads"].append({n: parts[n]["part"]["load_during"]["mean"] for n in PARTS})
        r["ratios"].append(parts["lora_same"]["wall_s"] / parts["peer_ray"]["wall_s"])
        walls = [parts[n]["part"]["wall_s"] for n in PARTS]  # whole processes, imports too
        r["process_ratios"].append(walls[0] / walls[1])
    r["load_after"] = os.getloadavg()
    write_section(out, stem, r, render(r))


if __name__ == "__main__":
    main()
