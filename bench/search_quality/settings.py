"""The search-quality bench's settings: the methods, each task's settings per mode, and
the spec (as YAML data) of each method on each task; every spec is parsed before anything runs."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from bench.layered import merged
from lora_hpo.spec.loader import parse_spec
from lora_hpo.spec.params import can_be

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
METHODS = {
    "default": "tutorial default (r=8, α=16, lr 2e-4)",
    "random": "random search, no early stopping",
    "tpe_asha": "TPE + ASHA (lora-hpo's default)",
    "staged": "staged (rank sweep, then α/r + lr)",
}
SHORT = {"default": "the default", "random": "random", "tpe_asha": "TPE + ASHA", "staged": "staged"}
# The tutorial default. In its spec r is a one-value choice, not a fixed value: Ray's
# OptunaSearch refuses a space with nothing to search.
DEFAULT = {"r": 8, "lora_alpha": 16.0, "use_rslora": False, "learning_rate": 2.0e-4}
DEFAULT_SPACE = DEFAULT | {"r": {"choices": [DEFAULT["r"]]}}
TASKS: dict[str, dict[str, Any]] = {
    "minilm-bbc": {
        "title": "MiniLM-L6 sequence classification on BBC news (5 topics)",
        "base": "quickstart.yaml",  # its data, training, space and ASHA settings, wider r
        "data": {"max_length": 32, "max_train_samples": 1000, "max_eval_samples": 200},
        "training": {"max_steps": 40, "eval_every": 10, "batch_size": 16},
        "space": {"r": {"choices": [4, 8, 16, 32]}},
        "cpu": 1,
        "concurrency": 2,
        "random_trials": 8,  # B = 8 x 40 = 320 trial-steps
        "tpe_samples": 16,  # at least 40 + 15 x 20 = 340 trial-steps (least_trial_steps)
        "scheduler": {"grace_period": 20, "reduction_factor": 2},
        "staged": {"r_min": 4, "r_max": 32, "samples_per_rank": 2, "stage2_samples": 12},
    },
    "smollm2-instruct": {
        "title": "SmolLM2-135M causal LM on BBC news as instructions (answer: the topic word)",
        "base": "instruction-tuning.yaml",  # its space: r 16-64, rsLoRA on/off, all-linear
        # 48 tokens keep the question, the answer and ~25 tokens of the article; an eval of 32
        # examples costs about 2 training steps, so every 10 steps (one ASHA rung at 10)
        "data": {"max_length": 48, "max_train_samples": 400, "max_eval_samples": 32},
        "training": {"max_steps": 20, "eval_every": 10, "batch_size": 4, "eval_batch_size": 16},
        "space": {},
        "cpu": 1,
        "concurrency": 2,
        "random_trials": 4,  # B = 4 x 20 = 80 trial-steps
        "tpe_samples": 8,  # at least 20 + 7 x 10 = 90 trial-steps
        "scheduler": {"grace_period": 10, "reduction_factor": 2},
        "staged": {"r_min": 16, "r_max": 64, "samples_per_rank": 2, "stage2_samples": 2},
    },
}
SMOKE_TRAINING = {"max_steps": 4, "eval_every": 2, "batch_size": 2, "eval_batch_size": 8}
MODES: dict[str, dict[str, dict[str, Any]]] = {  # per mode: overrides of each task's settings
    "full": {},
    "quick": {
        "minilm-bbc": {
            "training": {"max_steps": 20},
            "random_trials": 6,
            "tpe_samples": 12,
            "scheduler": {"grace_period": 10},
            "staged": {"r_max": 16, "stage2_samples": 6},
        },
        "smollm2-instruct": {
            "data": {"max_length": 32},
            "training": {"max_steps": 10, "eval_every": 5},
            "scheduler": {"grace_period": 5},
            "staged": {"r_max": 32},
        },
    },
    "smoke": {
        "minilm-bbc": {
            "data": {"max_train_samples": 64, "max_eval_samples": 32},
            "training": SMOKE_TRAINING,
            "random_trials": 3,
            "tpe_samples": 6,
            "scheduler": {"grace_period": 2},
            "staged": {"r_max": 8, "samples_per_rank": 1, "stage2_samples": 2},
        },
        "smollm2-instruct": {
            "data": {"max_length": 32, "max_train_samples": 32, "max_eval_samples": 8},
            "training": SMOKE_TRAINING,
            "random_trials": 2,
            "tpe_samples": 4,
            "scheduler": {"grace_period": 2},
            "staged": {"r_max": 32, "samples_per_rank": 1, "stage2_samples": 2},
        },
    },
}


def task_settings(mode: str, task: str) -> dict[str, Any]:
    """One task's settings in this mode, with its budget B and trial length T."""
    s = merged(TASKS[task], MODES[mode].get(task, {}))
    s["max_steps"] = s["training"]["max_steps"]
    s["budget"] = s["random_trials"] * s["max_steps"]
    return s


def least_trial_steps(s: dict[str, Any], method: str) -> int:
    """The fewest trial-steps a method can run on these settings, however ASHA stops trials.

    ASHA never stops the first trial to reach a rung, so each study (each stage) runs one
    trial to the end and the others at least to the grace period; stage 1 runs two ranks at
    least (the first rank never ends the sweep). TPE + ASHA and staged should reach B."""
    t, grace = s["max_steps"], s["scheduler"]["grace_period"]

    def study(samples: int) -> int:
        return int(t + (samples - 1) * grace)

    if method == "default":
        return int(t)
    if method == "random":
        return int(s["budget"])
    if method == "tpe_asha":
        return study(s["tpe_samples"])
    st = s["staged"]
    ranks = 2 if st["r_max"] > st["r_min"] else 1
    return ranks * study(st["samples_per_rank"]) + study(st["stage2_samples"])


def base_raw(s: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    """The task's base spec file with its data, training, space and resources applied."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "search_spaces" / s["base"]).read_text())
    raw["name"] = name
    raw["data"] |= s["data"]
    raw["training"] |= s["training"] | {"seed": seed}
    raw["space"] |= s["space"]
    raw["resources"] = {"cpu": s["cpu"]}
    raw.pop("tracking", None)
    return raw


def staged_section(s: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """The task's staged settings; stage 2's ratio band is the space's alpha/r band."""
    band = space.get("alpha_ratio") or {}
    ratio = {"ratio_low": band["low"], "ratio_high": band["high"]} if "low" in band else {}
    staged: dict[str, Any] = ratio | s["staged"]
    return staged


def method_raw(task: str, method: str, s: dict[str, Any], seed: int) -> dict[str, Any]:
    """The spec (as a dict) of one method on one task; ``seed`` seeds training and sampler."""
    raw = base_raw(s, f"sq-{task}-{method}-s{seed}", seed)
    asha = {"type": "asha", **s["scheduler"]}
    search: dict[str, Any] = {"sampler": "tpe", "seed": seed, "max_concurrent": s["concurrency"]}
    if method == "default":
        for alpha in ("alpha_ratio", "alpha_scale", "lora_alpha"):
            raw["space"].pop(alpha, None)
        raw["space"] |= DEFAULT_SPACE
        search |= {"num_samples": 1, "max_concurrent": 1, "scheduler": {"type": "none"}}
    elif method == "random":
        search |= {"sampler": "random", "num_samples": s["random_trials"]}
        search |= {"scheduler": {"type": "none"}}
    elif method == "tpe_asha":
        search |= {"num_samples": s["tpe_samples"], "scheduler": asha}
    elif method == "staged":
        staged = staged_section(s, raw["space"])
        search |= {"strategy": "staged", "staged": staged, "scheduler": asha}
        search["num_samples"] = max(s["concurrency"], staged["stage2_samples"])  # unused
    else:
        raise ValueError(f"unknown method {method!r}")
    raw["search"] = {k: v for k, v in raw["search"].items() if k in ("metric", "mode")} | search
    return raw


def default_outside(raw: dict[str, Any]) -> list[str]:
    """The tutorial default's values that a spec's searched space cannot reach."""
    space = parse_spec(copy.deepcopy(raw)).space
    alpha = ("alpha_ratio", DEFAULT["lora_alpha"] / DEFAULT["r"])
    if space.alpha_mode != "alpha_ratio":
        alpha = ("lora_alpha", DEFAULT["lora_alpha"])
        if space.alpha_mode == "alpha_scale":
            alpha = ("alpha_scale", DEFAULT["lora_alpha"] / math.sqrt(DEFAULT["r"]))
    wanted = [(name, DEFAULT[name]) for name in ("r", "use_rslora", "learning_rate")] + [alpha]
    return [f"{n} {v:g}" for n, v in wanted if not can_be(getattr(space, n), v)]


def check_specs(tasks: dict[str, dict[str, Any]], methods: list[str], seeds: list[int]) -> None:
    """Parse every spec before anything runs: a bad one stops the bench at once."""
    for task, s in tasks.items():
        for method in methods:
            for seed in seeds:
                parse_spec(method_raw(task, method, s, seed), f"bench:{task}:{method}")
