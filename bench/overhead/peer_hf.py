"""The peer: a LoRA search written the way a transformers user writes it, with
``Trainer.hyperparameter_search`` on the Ray Tune or the Optuna backend.

    python -m bench.overhead.peer_hf --backend ray|optuna --settings SETTINGS.json --out RESULT.json

Everything a user would write is here: data prep, ``model_init`` building the PEFT model from
the trial's params, ``hp_space`` in each backend's own dialect, and each backend's early
stopping (Ray: ``ASHAScheduler``; Optuna: ``SuccessiveHalvingPruner``, which is ASHA). The one
addition is ``StepTimer``, a callback that records the seconds spent inside training steps and
in evaluation for each trial (a JSON file per trial), so the bench can tell overhead from work.
The bench's settings file fixes the task (sequence length, batch size, steps, eval set) and
the configs: the Ray backend gets them as ``points_to_evaluate``; Optuna's seeded TPE draws the
same ones by itself (its first 10 trials are random draws).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch  # import torch before ray.init: oneMKL aborts otherwise
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from lora_hpo.training.demos import demo_model_dir, load_demo_dataset

MODEL_DIR = str(demo_model_dir("minilm-l6"))
SPACE = {  # the reference space
    "r": [4, 8, 16],
    "alpha_ratio": (0.5, 4.0),  # lora_alpha = alpha_ratio * r
    "use_rslora": [False, True],
    "learning_rate": (1e-5, 2e-3),  # log-uniform
}


_INIT_AT = [0.0]  # when this process's model_init last began: the trial's model load


class StepTimer(TrainerCallback):
    """Per trial: seconds inside training steps, seconds in evaluation, steps done, and when its
    model load (``model_init``) began."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.record: dict[str, Any] = {"pid": os.getpid(), "train_begin_at": time.time()}
        self.record["init_at"] = _INIT_AT[0]
        self.record["steps"] = 0
        self.record |= {"step_time_s": 0.0, "eval_s": 0.0}
        self.record["first_step_at"] = None
        self.path = Path(self.out_dir) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.t0 = time.perf_counter()
        if self.record["first_step_at"] is None:  # by now the handler holds this trial's model
            self.record["first_step_at"] = time.time()
            self.record["params"] = trained_params(kw.get("model"), args)
            self.record["torch_threads"] = torch.get_num_threads()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.record["step_time_s"] += time.perf_counter() - self.t0
        self.record["steps"] = state.global_step
        self.save()  # every step: a trial stopped by the scheduler never reaches on_train_end

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        self.record["eval_s"] += float((metrics or {}).get("eval_runtime", 0.0))
        self.record["eval_accuracy"] = float((metrics or {}).get("eval_accuracy", "nan"))
        self.save()

    def save(self) -> None:
        self.record["updated_at"] = time.time()
        self.path.write_text(json.dumps(self.record))


def trained_params(model: Any, args: Any) -> dict[str, Any]:
    """The config this trial really trains, read back from the PEFT model and the args."""
    lora = model.peft_config["default"]
    return {
        "r": lora.r,
        "alpha_ratio": lora.lora_alpha / lora.r,
        "use_rslora": lora.use_rslora,
        "learning_rate": args.learning_rate,
    }


def prepare_data(s: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Tokenised train/eval splits: the same split and caps as lora-hpo's demo data."""
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    split = load_demo_dataset("bbc-news").train_test_split(test_size=s["eval_fraction"], seed=0)
    train, evaluation = split["train"], split["test"]
    if s["max_train_samples"]:
        train = train.select(range(min(s["max_train_samples"], len(train))))
    if s["max_eval_samples"]:
        evaluation = evaluation.select(range(min(s["max_eval_samples"], len(evaluation))))

    def encode(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=s["max_length"])

    train = train.map(encode, batched=True, remove_columns=["text"])
    evaluation = evaluation.map(encode, batched=True, remove_columns=["text"])
    return tokenizer, train, evaluation


def model_init(trial: Any) -> Any:
    """A fresh MiniLM with LoRA on query/key/value, configured from the trial's params."""
    from peft import LoraConfig, TaskType, get_peft_model

    _INIT_AT[0] = time.time()
    params: dict[str, Any] = {"r": 8, "alpha_ratio": 1.0, "use_rslora": False}  # for Trainer()
    if isinstance(trial, dict):  # Ray: the sampled config
        params = trial
    elif trial is not None:  # Optuna: model_init runs before hp_space, so suggest here
        params = optuna_hp_space(trial)
    model = AutoModelForSequenceClassification.from_pretrained(MODEL_DIR, num_labels=5)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=int(params["r"]),
        lora_alpha=float(params["alpha_ratio"]) * int(params["r"]),  # type: ignore[arg-type]
        use_rslora=bool(params["use_rslora"]),
        target_modules=["query", "key", "value"],
        lora_dropout=0.0,
    )
    return get_peft_model(model, config)


def optuna_hp_space(trial: Any) -> dict[str, Any]:
    """The space for the Optuna backend (asking twice for a name returns the same value)."""
    return {
        "r": trial.suggest_categorical("r", SPACE["r"]),
        "alpha_ratio": trial.suggest_float("alpha_ratio", *SPACE["alpha_ratio"]),
        "use_rslora": trial.suggest_categorical("use_rslora", SPACE["use_rslora"]),
        "learning_rate": trial.suggest_float("learning_rate", *SPACE["learning_rate"], log=True),
    }


def ray_hp_space() -> dict[str, Any]:
    """The same space for the Ray backend, as tune sampling functions."""
    from ray import tune

    return {
        "r": tune.choice(SPACE["r"]),
        "alpha_ratio": tune.uniform(*SPACE["alpha_ratio"]),
        "use_rslora": tune.choice(SPACE["use_rslora"]),
        "learning_rate": tune.loguniform(*SPACE["learning_rate"]),
    }


def accuracy(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, -1) == labels).mean())}


def make_trainer(s: dict[str, Any], timer_dir: str) -> Trainer:
    tokenizer, train, evaluation = prepare_data(s)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="peer-hf-"),
        max_steps=s["max_steps"],
        per_device_train_batch_size=s["batch_size"],
        per_device_eval_batch_size=s["eval_batch_size"],
        eval_strategy="steps",
        eval_steps=s["eval_every"],
        seed=s["seed"],
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    return Trainer(
        model_init=model_init,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
        callbacks=[StepTimer(timer_dir)],
    )


def search_ray(trainer: Trainer, s: dict[str, Any], storage: str) -> Any:
    """Ray backend: tune.* space, ASHA on eval reports, 1 CPU per trial. The bench's configs
    go in as ``points_to_evaluate``, so the random search runs exactly those."""
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    every = s["eval_every"]  # Ray counts reports (one per eval); ASHA's unit is steps / every
    scheduler = ASHAScheduler(
        metric="objective",
        mode="max",
        max_t=s["max_steps"] // every,
        grace_period=max(1, s["grace_period"] // every),
        reduction_factor=s["reduction_factor"],
    )
    return trainer.hyperparameter_search(
        hp_space=lambda _: ray_hp_space(),
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        n_trials=s["trials"],
        direction="maximize",
        backend="ray",
        scheduler=scheduler,
        search_alg=BasicVariantGenerator(points_to_evaluate=s["configs"]),
        resources_per_trial={"cpu": 1},
        storage_path=storage,
    )


def search_optuna(trainer: Trainer, s: dict[str, Any]) -> Any:
    """Optuna backend: ``hp_space(trial)``, TPE seeded (its first 10 trials are random, the
    same draws the bench gives lora-hpo), and ASHA as Optuna's SuccessiveHalvingPruner."""
    import optuna

    return trainer.hyperparameter_search(
        hp_space=optuna_hp_space,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        n_trials=s["trials"],
        direction="maximize",
        backend="optuna",
        sampler=optuna.samplers.TPESampler(seed=s["seed"]),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=s["grace_period"], reduction_factor=s["reduction_factor"]
        ),
        n_jobs=s["optuna_n_jobs"],
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["ray", "optuna"], required=True)
    ap.add_argument("--settings", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    s = json.loads(Path(args.settings).read_text())
    work = Path(args.out).parent / f"peer-{args.backend}"
    timer_dir = work / "timers"
    shutil.rmtree(work, ignore_errors=True)
    timer_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    trainer = make_trainer(s, str(timer_dir))
    if args.backend == "ray":
        best = search_ray(trainer, s, str((work / "ray").resolve()))
    else:
        best = search_optuna(trainer, s)
    wall = time.time() - start
    timers = [json.loads(p.read_text()) for p in sorted(timer_dir.glob("*.json"))]
    result = {
        "backend": args.backend,
        "start": start,
        "wall_s": wall,
        "best": best.objective,
        "best_params": best.hyperparameters,
        "trials": timers,
    }
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
