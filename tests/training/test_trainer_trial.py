"""One trial: real PEFT LoRA training on a tiny Llama and on MiniLM, offline, on CPU."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.base_model import release
from lora_hpo.training.lora_adapters import attach
from lora_hpo.training.trainer_trial import prepare, run_trial
from tests.conftest import BASE_SPEC
from tests.tiny_models import weights_hash, write_copy_task, write_tiny_llama

pytestmark = pytest.mark.slow  # real training: about a minute on 2 cores

PARAMS = {"r": 8, "alpha_ratio": 2.0, "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def llama_spec(tmp_path_factory: Any) -> StudySpec:
    root = tmp_path_factory.mktemp("llama")
    write_tiny_llama(root / "model")
    write_copy_task(root / "copy.jsonl")
    data = copy.deepcopy(BASE_SPEC)
    data.update(
        task="causal-lm",
        model={"path": str(root / "model")},
        data={
            "files": [str(root / "copy.jsonl")],
            "prompt_field": "prompt",
            "completion_field": "completion",
            "eval_fraction": 0.2,
            "max_length": 24,
        },
        training={"max_steps": 40, "eval_every": 10, "batch_size": 8},
        search={"num_samples": 2, "max_concurrent": 1, "scheduler": {"type": "none"}},
    )
    data["space"]["target_modules"] = "attention"
    return parse_spec(data)


@pytest.fixture(scope="module")
def minilm_spec() -> StudySpec:
    data = copy.deepcopy(BASE_SPEC)
    data["data"].update(max_train_samples=160, max_eval_samples=48)
    data["training"] = {"max_steps": 20, "eval_every": 10, "batch_size": 16}
    return parse_spec(data)


class Reports(list[tuple[dict[str, Any], str | None]]):
    def __call__(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        self.append((dict(metrics), checkpoint_dir))

    @property
    def steps(self) -> list[int]:
        return [m["step"] for m, _ in self]


def test_causal_lm_reports_every_eval_and_learns(llama_spec: StudySpec) -> None:
    reports = Reports()
    last = run_trial(llama_spec, PARAMS, reports)
    assert reports.steps == [10, 20, 30, 40]
    losses = [m["eval_loss"] for m, _ in reports]
    assert losses[-1] < losses[0] * 0.8, losses
    assert last["status"] == "completed"
    assert math.isclose(last["eval_perplexity"], math.exp(last["eval_loss"]))
    for key in ("train_loss", "adapter_norm_mean", "adapter_norm_max", "trainable_params"):
        assert key in last
    assert last["effective_scale"] == 2.0
    for _, ckpt in reports:
        assert ckpt is not None


def test_completion_only_loss(llama_spec: StudySpec) -> None:
    _, data = prepare(llama_spec)
    row = data.train[0]
    labels = row["labels"]
    n_prompt = sum(1 for v in labels if v == -100)
    assert 0 < n_prompt < len(labels)
    assert labels[n_prompt:] == row["input_ids"][n_prompt:]


def test_classification_reports_accuracy_and_f1(minilm_spec: StudySpec) -> None:
    reports = Reports()
    run_trial(minilm_spec, PARAMS, reports)
    assert reports.steps == [10, 20]
    for metrics, _ in reports:
        assert 0 <= metrics["eval_accuracy"] <= 1 and 0 <= metrics["eval_f1"] <= 1
    assert reports[-1][0]["train_loss"] < 1.7  # ln(5) = 1.61 at chance


@pytest.mark.parametrize("rslora", [False, True])
def test_peft_scaling_matches_params(minilm_spec: StudySpec, rslora: bool) -> None:
    entry, _ = prepare(minilm_spec)
    params = derive(
        minilm_spec.space, {"r": 8, "alpha_ratio": 1.5, "learning_rate": 1e-4, "use_rslora": rslora}
    )
    peft_model = attach(entry, params, minilm_spec, seed=0)
    scalings = {
        m.scaling["default"]
        for m in peft_model.modules()
        if hasattr(m, "scaling") and isinstance(m.scaling, dict) and "default" in m.scaling
    }
    release(entry)
    expected = 12.0 / (math.sqrt(8) if rslora else 8)
    assert scalings and all(math.isclose(s, expected) for s in scalings), scalings
    assert math.isclose(params.scaling, expected)


def test_resume_continues_from_the_checkpoint(llama_spec: StudySpec, tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    first = Reports()

    def die_after_20(metrics: dict[str, Any], ckpt: str | None) -> None:
        first(metrics, ckpt)
        if metrics["step"] == 20:
            raise Killed

    with pytest.raises(Killed):
        run_trial(llama_spec, PARAMS, die_after_20, workdir=str(tmp_path / "a"))
    resumed = Reports()
    run_trial(llama_spec, PARAMS, resumed, resume_from=first[-1][1], workdir=str(tmp_path / "b"))
    assert first.steps == [10, 20]
    assert resumed.steps == [30, 40]  # continues at 30: no step repeated from 0
    straight = Reports()
    run_trial(llama_spec, PARAMS, straight)
    # adapter, optimizer, scheduler and data position came back: the same curve
    assert math.isclose(resumed[-1][0]["eval_loss"], straight[-1][0]["eval_loss"], rel_tol=1e-4)


def test_trial_is_deterministic_for_a_seed(llama_spec: StudySpec) -> None:
    a, b = Reports(), Reports()
    run_trial(llama_spec, PARAMS, a)
    run_trial(llama_spec, PARAMS, b)
    assert [m["eval_loss"] for m, _ in a] == [m["eval_loss"] for m, _ in b]


def test_evaluations_do_not_change_training(llama_spec: StudySpec) -> None:
    """With dropout on, a trial that evaluates every 10 steps ends where one that evaluates
    only at its last step does: evaluating draws from torch's RNG, and the bridge restores it."""
    dense, sparse = Reports(), Reports()
    params = {**PARAMS, "lora_dropout": 0.3}
    run_trial(llama_spec, params, dense)
    once = dataclasses.replace(
        llama_spec, training=dataclasses.replace(llama_spec.training, eval_every=40)
    )
    run_trial(once, params, sparse)
    assert (dense.steps, sparse.steps) == ([10, 20, 30, 40], [40])
    assert dense[-1][0]["eval_loss"] == sparse[-1][0]["eval_loss"]


def test_huge_learning_rate_diverges_early(llama_spec: StudySpec) -> None:
    reports = Reports()
    last = run_trial(llama_spec, {**PARAMS, "learning_rate": 10.0}, reports)
    assert last["status"] == "diverged", last
    assert last["step"] < llama_spec.training.max_steps
    assert last["diverged_reason"]
    assert math.isfinite(last["eval_accuracy"] if "eval_accuracy" in last else last["eval_loss"])


def test_unmatched_target_modules_list_the_model_names(llama_spec: StudySpec) -> None:
    with pytest.raises(UsageError) as err:
        run_trial(llama_spec, {**PARAMS, "target_modules": "query,value"}, Reports())
    message = str(err.value)
    assert "space.target_modules" in message and "q_proj" in message


def test_second_trial_reuses_the_base_model_untouched(minilm_spec: StudySpec) -> None:
    entry, _ = prepare(minilm_spec)
    before = weights_hash(entry.model)
    run_trial(minilm_spec, PARAMS, Reports())
    entry_after, _ = prepare(minilm_spec)
    assert entry_after is entry  # the cached base, not reloaded from disk
    assert weights_hash(entry.model) == before  # LoRA removed, head restored
