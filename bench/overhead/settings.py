"""The overhead bench's settings per mode, and the lora-hpo specs it runs, built from
search_spaces/quickstart.yaml.

Variants, all on the bench's task settings (sequence length, batch size, steps, eval set):
  same         the peer's space and optimizer setup (one learning rate for adapter and head,
               linear schedule), TPE seeded (its first 10 trials are random draws), ASHA with
               the bench's settings, evaluated where ASHA reads (its rungs and each trial's
               last step: lora-hpo's default). The peer evaluates every ``eval_every`` steps,
               as it must: Ray's ASHA counts its reports, one per evaluation, on a fixed grid.
               Both grids hold the rungs, so ASHA reads the same values at the same steps
               (which trials have reached a rung when another does may differ: ASHA is
               asynchronous);
  no-asha      the same, without early stopping;
  recommended  lora-hpo's own quickstart setup: its space, head learning rate, constant
               schedule and ASHA settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lora_hpo.spec.loader import parse_spec
from lora_hpo.spec.schema import StudySpec

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"
BENCH = REPO / "bench"
TASK = {"eval_fraction": 0.15, "seed": 0, "concurrency": 2, "optuna_n_jobs": 1}
MODES: dict[str, dict[str, Any]] = {
    "smoke": {
        "trials": 3,
        "max_steps": 4,
        "eval_every": 2,
        "max_length": 32,
        "batch_size": 8,
        "eval_batch_size": 16,
        "max_train_samples": 64,
        "max_eval_samples": 32,
        "grace_period": 2,
        "reduction_factor": 2,
        "recommended_grace_period": 2,
        "repeats": 1,
    },
    "quick": {
        "trials": 4,
        "max_steps": 20,
        "eval_every": 10,
        "max_length": 64,
        "batch_size": 16,
        "eval_batch_size": 32,
        "max_train_samples": None,
        "max_eval_samples": 100,
        "grace_period": 10,
        "reduction_factor": 3,
        "recommended_grace_period": 10,
        "repeats": 1,
    },
    "full": {
        "trials": 8,
        "max_steps": 60,
        "eval_every": 10,
        "max_length": 128,
        "batch_size": 16,
        "eval_batch_size": 32,
        "max_train_samples": None,
        "max_eval_samples": 200,
        "grace_period": 10,
        "reduction_factor": 3,
        "recommended_grace_period": 20,
        "repeats": 1,
    },
}
QUICKSTART_SET = {  # --set overrides for the quickstart command (none in the full bench)
    "smoke": [
        "training.max_steps=4",
        "training.eval_every=2",
        "search.num_samples=3",
        "search.scheduler.grace_period=2",
        "data.max_train_samples=64",
        "data.max_eval_samples=32",
    ],
    "quick": ["training.max_steps=20", "search.num_samples=4", "search.scheduler.grace_period=10"],
    "full": [],
}
ORDER = ("peer_ray", "lora_same", "peer_optuna", "lora_no_asha", "lora_recommended", "quickstart")


SAME_SPACE = {  # the reference space, as the peer's script states it
    "r": {"choices": [4, 8, 16]},
    "alpha_ratio": {"low": 0.5, "high": 4.0},
    "use_rslora": {"choices": [False, True]},
    "learning_rate": {"low": 1.0e-5, "high": 2.0e-3, "log": True},
    "lora_dropout": 0.0,
    "target_modules": "attention",
}


def task_sections(s: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data and training settings every variant shares with the peer."""
    data = {
        "demo": "bbc-news",
        "eval_fraction": s["eval_fraction"],
        "max_length": s["max_length"],
        "max_train_samples": s["max_train_samples"],
        "max_eval_samples": s["max_eval_samples"],
    }
    training = {
        "max_steps": s["max_steps"],
        "eval_every": s["eval_every"],
        "batch_size": s["batch_size"],
        "eval_batch_size": s["eval_batch_size"],
        "seed": s["seed"],
    }
    return data, training


def build_spec(variant: str, s: dict[str, Any]) -> StudySpec:
    """The spec of one variant (see the module docstring) on the bench's settings ``s``."""
    raw = yaml.safe_load(QUICKSTART.read_text())
    data, training = task_sections(s)
    raw["name"] = f"bench-{variant}"
    raw["data"] |= data
    raw["training"] |= training
    raw["search"] |= {"num_samples": s["trials"], "max_concurrent": s["concurrency"]}
    raw["search"] |= {"sampler": "tpe", "seed": s["seed"]}
    if variant == "recommended":  # quickstart's space, head lr and schedule; its ASHA setup
        raw["search"]["scheduler"]["grace_period"] = s["recommended_grace_period"]
        return parse_spec(raw, str(QUICKSTART))
    raw["space"] = SAME_SPACE
    raw.pop("task_type")  # the peer's space reaches r=16, outside the classification band
    raw["training"] |= {"head_learning_rate": None, "lr_scheduler": "linear"}
    scheduler = {"grace_period": s["grace_period"], "reduction_factor": s["reduction_factor"]}
    raw["search"]["scheduler"] = {"type": "none" if variant == "no-asha" else "asha", **scheduler}
    if variant == "same":  # lora-hpo evaluates where ASHA reads: its rungs and the last step
        del raw["training"]["eval_every"]
    return parse_spec(raw, str(QUICKSTART))


def sample_configs(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The first ``trials`` draws of Optuna's RandomSampler(seed) over the same space: what
    both tools' seeded TPE samplers draw (TPE's first 10 trials are random)."""
    import optuna

    from lora_hpo.spec.space import compile_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = compile_space(build_spec("same", s).space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=s["seed"]))
    configs = []
    for _ in range(s["trials"]):
        trial = study.ask(fixed_distributions=space)
        configs.append(trial.params)
        study.tell(trial, 0.0)
    return configs
