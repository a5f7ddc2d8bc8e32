"""Could a slot's first trial skip its worker boot (P1's lead)? Ray starts one idle worker
process per CPU with the node ("ray::IDLE"), so that a task or actor can start without booting
a process. This bench asks, each on a fresh local Ray, which kinds of work land on one of them:

    actor           a plain ``@ray.remote`` actor
    actor+env       the same actor with a runtime_env of env_vars, as Tune gives each trainable
                    actor (``{"PL_DISABLE_FORK": "1"}``, plus any variables it propagates)
    tune trial      a Ray Tune function trainable, one trial
    lora-hpo trial  the same, as ``lora-hpo run`` starts it on a local Ray: Tune's env_vars in
                    the driver's environment, which the workers inherit, and the trainable
                    actor registered without them (``ray_internals.plain_trial_actors``)

and, for each, the seconds from the request to the first result. A kind that never lands on a
prestarted worker pays a fresh process's boot (Ray's worker, then the trial's imports) in
every slot's first trial, whatever the driver does before it.

    python -m bench.overhead.workers            # 3 repeats: about 1 min
    python -m bench.overhead.workers --smoke    # 1 repeat (tests run it)

It writes <out>/workers.json and <out>/workers.md (default bench/out/workers/).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import machine
from bench.overhead.settings import BENCH
from bench.results_md import write_section

KINDS = ("actor", "actor+env", "tune trial", "lora-hpo trial")
TUNE_ENV = {"PL_DISABLE_FORK": "1"}  # what Ray Tune sets on every trainable actor
CPUS = 2


def idle_workers(timeout_s: float = 60.0) -> set[int]:
    """The pids of the prestarted workers of the Ray this process started (its raylet's
    children; another Ray on the machine is not counted), once all ``CPUS`` of them are up."""
    import psutil

    me = psutil.Process()
    deadline = time.monotonic() + timeout_s
    while True:
        found = {p.pid for p in me.children(recursive=True) if _name(p) == "ray::IDLE"}
        if len(found) >= CPUS or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _name(process: Any) -> str:
    import psutil

    try:
        return str(process.name())
    except psutil.Error:  # it ended while we looked
        return ""


def run_kind(kind: str, storage: str) -> int:
    """Start one piece of work of ``kind``; the pid of the process it ran in. (The work is
    defined here, so that Ray ships it by value: a worker need not import this bench.)"""
    import ray

    if kind in ("tune trial", "lora-hpo trial"):
        from ray import tune

        from lora_hpo.search.ray_internals import plain_trial_actors

        def trainable(config: dict[str, Any]) -> None:
            tune.report({"worker_pid": os.getpid()})

        config = tune.RunConfig(storage_path=storage, verbose=0)
        plain = plain_trial_actors() if kind == "lora-hpo trial" else contextlib.nullcontext()
        with plain:
            grid = tune.Tuner(trainable, run_config=config).fit()
        metrics: dict[str, Any] = grid[0].metrics or {}
        return int(metrics["worker_pid"])

    class Probe:
        def pid(self) -> int:
            return os.getpid()

    options: dict[str, Any] = {"num_cpus": 1}
    if kind == "actor+env":
        options["runtime_env"] = {"env_vars": TUNE_ENV}
    actor: Any = ray.remote(**options)(Probe).remote()
    pid: Any = ray.get(actor.pid.remote())
    return int(pid)


def probe(kind: str) -> dict[str, Any]:
    """On a fresh local Ray: did ``kind`` land on a prestarted worker, and how long it took."""
    import ray

    from lora_hpo.search.ray_internals import tune_actor_env

    # the workers of a Ray started here inherit this environment (as lora-hpo's local Ray does)
    for key, value in tune_actor_env().items():
        os.environ.setdefault(key, value)
    # address="local": a new Ray of our own, never a `ray start` cluster already running here
    ray.init(address="local", num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
    try:
        prestarted = idle_workers()
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as storage:
            start = time.perf_counter()
            pid = run_kind(kind, storage)
            took = time.perf_counter() - start
    finally:
        ray.shutdown()
    return {"kind": kind, "prestarted": len(prestarted), "reused": pid in prestarted, "s": took}


def render(results: dict[str, Any]) -> str:
    lines = [
        "## Prestarted workers (`python -m bench.overhead.workers`)",
        "",
        f"{machine.provenance(results)}. On a fresh local Ray of {CPUS} CPUs per run, which"
        " kinds of work start in one of the idle worker processes Ray starts with the node,"
        f" and the seconds from the request to the first result; {runs_each(results['repeats'])}.",
        "",
        "| kind | on a prestarted worker | seconds to the first result |",
        "|---|---|---|",
    ]
    for kind in KINDS:
        runs = [r for r in results["runs"] if r["kind"] == kind]
        reused = sum(1 for r in runs if r["reused"])
        times = ", ".join(f"{r['s']:.2f}" for r in runs)
        lines.append(f"| {kind} | {reused} of {len(runs)} runs | {times} |")
    lines += ["", results["finding"]]
    return "\n".join(lines) + "\n"


def runs_each(n: int) -> str:
    return f"{n} run each" if n == 1 else f"{n} runs each"


def finding(runs: list[dict[str, Any]]) -> str:
    """The sentence the figures support (it says so when they do not)."""
    reused = {k: all(r["reused"] for r in runs if r["kind"] == k) for k in KINDS}
    never = {k: not any(r["reused"] for r in runs if r["kind"] == k) for k in KINDS}
    if reused["actor"] and never["actor+env"] and never["tune trial"] and reused["lora-hpo trial"]:
        return (
            "A plain actor starts in a prestarted worker; an actor with a runtime_env does not,"
            " and Ray Tune gives every trainable actor one, so a plain Tune trial boots a fresh"
            " worker process. A trial as lora-hpo runs it on a local Ray (Tune's env_vars"
            " inherited from the driver instead) starts in a prestarted worker, which"
            " `lora-hpo run` has import the trial's modules while the driver runs its"
            " preflight."
        )
    return f"The runs do not show one pattern per kind (reused in every run: {reused})."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="1 repeat")
    ap.add_argument("--repeats", type=int, help="runs per kind (default 3; 1 with --smoke)")
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "workers")
    args = ap.parse_args()
    import torch  # noqa: F401  (before ray.init, as in every driver here)

    repeats = args.repeats or (1 if args.smoke else 3)
    runs = [probe(kind) for _ in range(repeats) for kind in KINDS]
    results = machine.describe(" ".join(["python", "-m", "bench.overhead.workers", *sys.argv[1:]]))
    results |= {"repeats": repeats, "runs": runs, "finding": finding(runs)}
    write_section(args.out, "workers", results, render(results))


if __name__ == "__main__":
    main()
