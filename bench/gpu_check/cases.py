"""The cases of the GPU check, as specs: on the GPU at real (small) sizes, or with ``cpu`` at
tiny sizes on the CPU (a tiny random Llama stands in for SmolLM2 there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.layered import merged

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"


def _llm(name: str, model: dict[str, Any], steps: int, cpu: bool) -> dict[str, Any]:
    return {
        "name": name,
        "task": "causal-lm",
        "model": model,
        "data": {
            "demo": "bbc-news-instruct",
            "eval_fraction": 0.05,
            "max_length": 64,
            "max_train_samples": 400,
            "max_eval_samples": 32 if not cpu else 8,
        },
        "training": {
            "max_steps": steps,
            "eval_every": steps // 2,
            "batch_size": 8,
            "eval_batch_size": 16,
        },
        "search": {
            "metric": "eval_loss",
            "mode": "min",
            "num_samples": 1 if cpu else 2,  # one after the other: on the CPU one shows it runs
            "max_concurrent": 1,
            "scheduler": {"type": "none"},
        },
        "resources": {"cpu": 1, "gpu": 0 if cpu else 1},
        "space": {
            "r": 16,
            "alpha_ratio": 1.0,
            "learning_rate": {"low": 5e-4, "high": 2e-3, "log": True},
            "target_modules": "attention",
        },
    }


def cases(cpu: bool, tiny_model: Path | None = None) -> dict[str, dict[str, Any]]:
    """name -> spec (as YAML data). ``tiny_model``: the local model folder the CPU mode uses."""
    quick = yaml.safe_load(QUICKSTART.read_text())
    steps = 4 if cpu else 40
    gpu = 0 if cpu else 1
    small = {
        "training": {"max_steps": steps, "eval_every": steps // 2},
        "search": {"num_samples": 2, "scheduler": {"grace_period": steps // 2}},
        "resources": {"cpu": 1, "gpu": gpu},
    }
    if cpu:
        small["data"] = {"max_train_samples": 64, "max_eval_samples": 16}
    llm = {"path": str(tiny_model)} if cpu else {"demo": "smollm2-135m"}
    out = {
        "quickstart": merged(quick, small | {"name": "gpu-check-quickstart"}),
        "bf16": _llm("gpu-check-bf16", llm | {"dtype": "bfloat16"}, steps, cpu),
        "qlora-4bit": _llm("gpu-check-qlora", llm | {"quantization": {"bits": 4}}, steps, cpu),
        "shared-gpu": merged(
            merged(quick, small), {"name": "gpu-check-shared", "search": {"max_concurrent": 2}}
        ),
    }
    out |= _packing(llm, steps, cpu)
    out["qlora-4bit"]["training"]["optim"] = "adamw_torch" if cpu else "paged_adamw_8bit"
    out["shared-gpu"]["resources"] = {"cpu": 1, "gpu": 0 if cpu else 0.5}
    if cpu:
        out["shared-gpu"]["resources"]["cpu"] = 0.5  # two at once on what one trial would get
    return out


def _packing(llm: dict[str, Any], steps: int, cpu: bool) -> dict[str, dict[str, Any]]:
    """K adapters packed on one base against K trials sharing the device (``gpu: 1/K``): the
    same trials, the same concurrency; compare trial-steps per second. K = 8 on the GPU, 2 on
    the CPU."""
    k = 2 if cpu else 8
    out = {}
    for name, pack in (("packed", k), ("unpacked-shared", 1)):
        spec = _llm(f"gpu-check-{name}", llm, steps, cpu)
        spec["search"].update(num_samples=k, max_concurrent=k, pack=pack, sampler="random")
        share = {"cpu": 1, "gpu": 0 if cpu else 1} if pack > 1 else {"cpu": 1 / k, "gpu": 0}
        if pack == 1 and not cpu:
            share = {"cpu": 1, "gpu": 1 / k}
        spec["resources"] = share
        out[name] = spec
    return out
