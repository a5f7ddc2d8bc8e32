"""lora-hpo against the tools its users would otherwise use, measured side by side.

    python -m bench.overhead            # the full bench: about an hour on 2 cores
    python -m bench.overhead --quick    # smaller settings, about 12 minutes
    python -m bench.overhead --smoke    # tiny settings, about a minute per part (CI runs it)

Each part is a fresh process: three lora-hpo studies (part_lorahpo.py), the transformers
``Trainer.hyperparameter_search`` peer on Ray Tune and on Optuna (peer_hf.py), and the
``lora-hpo run search_spaces/quickstart.yaml`` command. The full bench writes
bench/out/results.json and bench/RESULTS.md; --smoke and --quick write both into
bench/out/<mode>/ unless --out is given. Logs go to <out>/logs/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine, results_md
from bench.overhead import figures, render
from bench.overhead.settings import (
    BENCH,
    MODES,
    ORDER,
    QUICKSTART,
    QUICKSTART_SET,
    REPO,
    TASK,
    sample_configs,
)


def part_command(name: str, settings: Path, out: Path, mode: str) -> list[str]:
    py = sys.executable
    if name.startswith("peer_"):
        backend = name.removeprefix("peer_")
        script = ["-m", "bench.overhead.peer_hf", "--backend", backend]
        return [py, *script, "--settings", str(settings), "--out", str(out)]
    if name.startswith("lora_"):
        variant = name.removeprefix("lora_").replace("_", "-")
        script = ["-m", "bench.overhead.part_lorahpo", "--variant", variant]
        return [py, *script, "--settings", str(settings), "--out", str(out)]
    cli = str(Path(py).parent / "lora-hpo")
    sets = [arg for kv in QUICKSTART_SET[mode] for arg in ("--set", kv)]
    return [cli, "run", str(QUICKSTART), "--storage-path", str(out.parent / "quickstart"), *sets]


def part_env() -> dict[str, str]:
    """Each part starts its own local Ray (never one another user left running here)."""
    env = dict(os.environ, RAY_ADDRESS="local", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_part(
    name: str, work: Path, logs: Path, mode: str, repeat: int, quiet: bool = False
) -> dict[str, Any]:
    """Run one part in a fresh process; its result plus wall time and load averages. With
    ``quiet``, it first waits for the machine to be quiet (``wait_quiet``)."""
    out = work / f"{name}.json"
    out.unlink(missing_ok=True)
    shutil.rmtree(work / "quickstart", ignore_errors=True)
    cmd = part_command(name, work / "settings.json", out, mode)
    log = logs / f"{name}-{repeat}.log"
    cwd = work / "quickstart-cwd" if name == "quickstart" else REPO  # its MLflow files go there
    cwd.mkdir(parents=True, exist_ok=True)
    if quiet:
        wait_quiet()
    before = os.getloadavg()
    print(f"[{time.strftime('%H:%M:%S')}] {name} (repeat {repeat + 1}), log: {log}", flush=True)
    start = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=part_env(), stdout=fh, stderr=subprocess.STDOUT)
        loads = sample_load(proc)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"bench: part {name} failed (exit {proc.returncode}); see {log}")
    if name == "quickstart":  # the whole command, timed from outside
        result = quickstart_result(work / "quickstart") | {"wall_s": wall}
    else:
        result = json.loads(out.read_text())
    result["part"] = {
        "wall_s": wall,
        "load_before": before,
        "load_after": os.getloadavg(),
        "load_during": {"mean": statistics.mean(loads), "max": max(loads)},
        "log": str(log),
        "command": cmd,
    }
    return result


def wait_quiet(below: float = 0.5, at_most_s: float = 240.0) -> None:
    """Wait until the 1-minute load average is below ``below`` (the last run's tail decays)."""
    end = time.monotonic() + at_most_s
    while os.getloadavg()[0] >= below and time.monotonic() < end:
        time.sleep(5)


def sample_load(proc: subprocess.Popen[bytes], every_s: float = 5.0) -> list[float]:
    """Wait for the part, sampling the 1-minute load average every few seconds."""
    loads = [os.getloadavg()[0]]
    while True:
        try:
            proc.wait(timeout=every_s)  # returns as soon as the part ends
            return loads
        except subprocess.TimeoutExpired:
            loads.append(os.getloadavg()[0])


def quickstart_result(storage: Path) -> dict[str, Any]:
    """The best last-reported accuracy over the quickstart study's trials (Ray's result files)."""
    accuracies = []
    for path in storage.glob("*/*/result.json"):
        lines = path.read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        accuracies.append(last.get("eval_accuracy_raw", math.nan))
    return {"best": max(accuracies, default=math.nan), "trials": len(accuracies)}


def concurrency(settings: dict[str, Any]) -> dict[str, int]:
    conc = {name: settings["concurrency"] for name in ORDER}
    conc["peer_optuna"] = settings["optuna_n_jobs"]
    return conc


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (CI)")
    size.add_argument("--quick", action="store_true", help="smaller settings")
    ap.add_argument("--repeats", type=int, help="run every part this many times (medians)")
    ap.add_argument("--out", type=Path, help="folder for results.json and RESULTS.md")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = TASK | MODES[mode]
    settings["repeats"] = args.repeats or settings["repeats"]
    out = args.out or (BENCH / "out" / mode if mode != "full" else BENCH / "out")
    work, logs = out / "work", out / "logs"
    for folder in (work, logs):
        folder.mkdir(parents=True, exist_ok=True)
    settings["configs"] = sample_configs(settings)
    (work / "settings.json").write_text(json.dumps(settings, indent=2))
    env = machine.describe(" ".join(["python", "-m", "bench.overhead", *sys.argv[1:]]))
    repeats = []
    for rep in range(settings["repeats"]):
        repeats.append({name: run_part(name, work, logs, mode, rep) for name in ORDER})
    env["load_after"] = os.getloadavg()
    conc = concurrency(settings)
    results = {
        "mode": mode,
        **env,
        "settings": settings,
        "concurrency": conc,
        "figures": figures.compute(repeats, conc),
        "breakdowns": figures.breakdowns(repeats, conc),
        "parts": repeats,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    md = BENCH / "RESULTS.md" if mode == "full" and args.out is None else out / "RESULTS.md"
    (out / "overhead.md").write_text(render.render(results))
    results_md.compose(out, md)
    print(render.figure_table(results))
    print(f"wrote {out / 'results.json'} and {md}")


if __name__ == "__main__":
    main()
