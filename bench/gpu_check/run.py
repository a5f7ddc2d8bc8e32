"""``python -m bench.gpu_check [--cpu] [--only NAME,...]``: run the cases one after another,
each as a real study through ``run_study``, and print one row per case: steps/s, peak GPU
memory per trial, the best metric, wall time. Writes the rows as JSON (``--out``)."""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch  # before ray

from bench import machine
from bench.gpu_check.cases import cases


def _row(name: str, result: Any, wall: float) -> dict[str, Any]:
    metric = result.spec.metric
    rates = [t.metrics["step"] / t.step_time_s for t in result.trials if t.step_time_s]
    peaks = [t.metrics.get("gpu_peak_mib") for t in result.trials]
    best = result.best.metrics.get(f"{metric}_raw") if result.best else None
    return {
        "case": name,
        "trials": len(result.trials),
        "steps_per_s": statistics.median(rates) if rates else None,
        "trial_steps_per_s": sum(t.metrics["step"] for t in result.trials) / wall,
        "gpu_peak_mib_per_trial": max((p for p in peaks if p), default=None),
        "metric": metric,
        "best": best,
        "wall_s": wall,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| case | trials | steps/s (median trial) | trial-steps/s (study) | peak GPU MiB per trial"
        " | best | wall s |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = f"{r['steps_per_s']:.2f}" if r["steps_per_s"] else "—"
        peak = f"{r['gpu_peak_mib_per_trial']:.0f}" if r["gpu_peak_mib_per_trial"] else "—"
        best = f"{r['metric']} {r['best']:.4f}" if r["best"] is not None else "—"
        lines.append(
            f"| {r['case']} | {r['trials']} | {rate} | {r['trial_steps_per_s']:.2f} | {peak}"
            f" | {best} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def _run_cases(cpu: bool, wanted: list[str], work: Path) -> list[dict[str, Any]]:
    import ray

    from lora_hpo.search.study_runner import run_study
    from lora_hpo.spec.spec_loader import parse_spec

    tiny = _tiny_model(work) if cpu else None
    rows = []
    ray.init(num_cpus=2 if cpu else None, include_dashboard=False, logging_level=logging.ERROR)
    try:
        for name, raw in cases(cpu, tiny).items():
            if wanted and name not in wanted:
                continue
            start = time.time()
            result = run_study(parse_spec(raw), storage_path=str(work / "out"), tracking=False)
            rows.append(_row(name, result, time.time() - start))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        ray.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU (CI)")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--out", type=Path, help="JSON rows (default: bench/out/gpu_check.json)")
    args = ap.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --cpu for the smoke run", file=sys.stderr)
        return 2
    from lora_hpo.training.quiet_logs import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="lora-hpo-gpu-check-") as tmp:  # studies, models
        rows = _run_cases(args.cpu, [x for x in args.only.split(",") if x], Path(tmp))
    _write(args.out, rows, args.cpu)
    return 0 if rows and all(r["best"] is not None for r in rows) else 1


def _write(out: Path | None, rows: list[dict[str, Any]], cpu: bool) -> None:
    out = out or Path(__file__).resolve().parents[1] / "out" / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = machine.describe("bash bench/gpu_check.sh" + (" --cpu" if cpu else ""))
    data = {"mode": "cpu" if cpu else "gpu", **info, "rows": rows}
    out.write_text(json.dumps(data, indent=2, default=str))
    print(table(rows))


def _tiny_model(work: Path) -> Path:
    """A tiny random Llama (with MiniLM's tokenizer, which loads at once) for the CPU mode."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lora_hpo.training.demo_assets import demo_model_dir

    folder = work / "tiny-llama"
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir("minilm-l6"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    sys.exit(main())
