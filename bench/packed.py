"""Packed training on CPU: trial-steps per second of K adapters packed on one MiniLM base
against the same adapters trained one at a time, on one thread, in one process (the
quickstart's sizes: batch 16 x 32 tokens, r 4 and 8). Unpacked is measured twice: through the
pack engine with K = 1, and through transformers' Trainer (what ``search.pack: 1`` runs).
Timings cover the optimizer steps only (no evaluation); each figure is the median of three
timed blocks after a warm-up, and the ratios are taken within this one run.

    python -m bench.packed [--steps 20] [--k 4] [--out bench/results]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.results_md import BENCH, compose, write_section

OUT = Path(__file__).resolve().parent / "results"  # committed: the section and its JSON
CONFIG = {"r": 8, "alpha_ratio": 1.0, "learning_rate": 1e-3}
SPEC: dict[str, Any] = {
    "name": "bench-packed",
    "task": "sequence-classification",
    "model": {"demo": "minilm-l6"},
    "data": {"demo": "bbc-news", "eval_fraction": 0.15, "max_length": 32,
             "max_train_samples": 1000, "max_eval_samples": 32},
    "training": {"max_steps": 1000, "batch_size": 16, "head_learning_rate": 0.01},
    "search": {"num_samples": 4, "max_concurrent": 2, "scheduler": {"type": "none"}},
    "space": {"r": {"choices": [4, 8]}, "alpha_ratio": 1.0, "learning_rate": 1e-3},
}  # fmt: skip


def _engine_rate(spec: Any, k: int, steps: int) -> float:
    """Trial-steps per second of k adapters packed on one engine (median of 3 blocks)."""
    from lora_hpo.training.pack.pack_engine import Engine

    engine = Engine(spec)
    adapters = [engine.add(f"t{i}", CONFIG | {"r": 4 * (1 + i % 2)}) for i in range(k)]
    for _ in range(3):
        engine.train_step(adapters)  # warm-up
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(steps):
            engine.train_step(adapters)
        rates.append(k * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def _trainer_rate(steps: int) -> float:
    """Steps per second of one unpacked trial (transformers' Trainer), from its step timer."""
    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.training.trainer_trial import run_trial

    short = copy.deepcopy(SPEC)
    short["training"] |= {"max_steps": 3 * steps + 3}
    reports: list[dict[str, Any]] = []
    run_trial(parse_spec(short), CONFIG, lambda m, c: reports.append(m))
    last = reports[-1]
    return float(last["step"] / last["step_time_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    import torch

    from lora_hpo.spec.spec_loader import parse_spec

    torch.set_num_threads(1)
    spec = parse_spec(SPEC)
    run = describe(f"python -m bench.packed --steps {args.steps} --k {args.k}")
    packed = _engine_rate(spec, args.k, args.steps)
    alone = _engine_rate(spec, 1, args.steps)
    trainer = _trainer_rate(args.steps)
    figures = {
        "k": args.k,
        "packed_trial_steps_per_s": packed,
        "engine_k1_steps_per_s": alone,
        "trainer_steps_per_s": trainer,
        "packed_over_engine_k1": packed / alone,
        "packed_over_trainer": packed / trainer,
    }
    write_section(args.out, "packed", run | {"figures": figures}, section(run, figures))
    if args.out == OUT:
        compose(BENCH / "out", BENCH / "RESULTS.md")


def section(run: dict[str, Any], f: dict[str, Any]) -> str:
    load = " / ".join(f"{x:.2f}" for x in run["load_before"])
    return f"""## Packed trials on CPU (`bench/packed.py`)

K = {f["k"]} MiniLM adapters (r 4 and 8, batch 16 x 32 tokens each) packed on one base, against
the same adapters one at a time, on one thread (`{run["command"]}`, {run["date"]}, git
{run["git"]["commit"]}{" with uncommitted changes" if run["git"]["dirty"] else ""}; load before
{load}). Optimizer steps only; median of three timed blocks.

| | trial-steps/s |
|---|---|
| packed, K = {f["k"]} | {f["packed_trial_steps_per_s"]:.2f} |
| unpacked, the pack engine with K = 1 | {f["engine_k1_steps_per_s"]:.2f} |
| unpacked, transformers' Trainer (`search.pack: 1`) | {f["trainer_steps_per_s"]:.2f} |

Packed / unpacked: {f["packed_over_engine_k1"]:.2f}x against the engine with K = 1,
{f["packed_over_trainer"]:.2f}x against the Trainer. As expected on a CPU: a larger batch
buys little there, so packing is about even in throughput; what it saves on a CPU is memory
(one base for K trials: `tests/training/pack/test_memory.py` measures it; on 2026-12-02 a
pack of 4 peaked at 1,076 MiB resident against 839 MiB for one unpacked trial process, so
0.32 x four unpacked trials). The throughput gain is a GPU's, where K small batches
leave the device idle; the GPU check (`bench/gpu_check.sh`, cases `packed` and
`unpacked-shared`) measures it when a GPU is lent. No GPU was lent to the sessions that built
packing, so that figure has not been measured yet.
"""


if __name__ == "__main__":
    main()
