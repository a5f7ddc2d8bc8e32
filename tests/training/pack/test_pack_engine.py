"""Packed training is exact: an adapter trained beside three others equals the same config
trained alone (same seed, same data order) in fp32 on CPU, one of them stopped early; a
resumed adapter equals one that never stopped; a saved adapter loads with plain PEFT and
scores what the pack reported. Real MiniLM, real training."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import BASE_SPEC

pytestmark = pytest.mark.slow

CONFIGS: dict[str, dict[str, Any]] = {
    "a": {"r": 4, "alpha_ratio": 2.0, "learning_rate": 4e-3, "use_rslora": False,
          "lora_dropout": 0.1},
    "b": {"r": 8, "alpha_ratio": 1.0, "learning_rate": 2e-3, "use_rslora": True,
          "lora_dropout": 0.0},
    "c": {"r": 16, "alpha_ratio": 0.5, "learning_rate": 3e-3, "use_rslora": False,
          "lora_dropout": 0.2},
    "d": {"r": 4, "alpha_ratio": 1.5, "learning_rate": 1e-3, "use_rslora": True,
          "lora_dropout": 0.05},
}  # fmt: skip
STEPS, STOP_C = 20, 10


def _spec() -> Any:
    from lora_hpo.spec.spec_loader import parse_spec

    d = copy.deepcopy(BASE_SPEC)
    d["data"].update(max_train_samples=160, max_eval_samples=48)
    d["training"] = {"max_steps": STEPS, "eval_every": 10, "batch_size": 8,
                     "head_learning_rate": 0.01, "seed": 3}  # fmt: skip
    d["space"]["r"] = {"choices": [4, 8, 16]}
    d["space"]["use_rslora"] = {"choices": [False, True]}
    d["space"]["lora_dropout"] = {"low": 0.0, "high": 0.3}
    return parse_spec(d)


def train(
    engine: Any, keys: str, until: dict[str, int], seeds: dict[str, int] | None = None
) -> dict[str, Any]:
    """Train adapters ``keys`` together; each stops at ``until`` (default: the last step).
    Returns per adapter its eval metrics at each report and its final weights."""
    adapters = [engine.add(k, CONFIGS[k]) for k in keys if k not in engine.adapters]
    adapters = [engine.adapters[k] for k in keys]
    out: dict[str, Any] = {k: {"evals": []} for k in keys}
    while adapters:
        engine.train_step(adapters)
        due = [a for a in adapters if engine.due(a)]
        if due:
            for key, metrics in engine.evaluate(due).items():
                out[key]["evals"].append(metrics)
        for a in list(adapters):
            if a.step >= until.get(a.key, STEPS):
                out[a.key]["weights"] = {
                    n: t.detach().clone() for n, t in a.peft_state_dict().items()
                }
                adapters.remove(a)
    return out


@pytest.fixture(scope="module")
def spec() -> Any:
    return _spec()


@pytest.fixture(scope="module")
def packed(spec: Any) -> tuple[Any, dict[str, Any]]:
    from lora_hpo.training.pack.pack_engine import Engine

    engine = Engine(spec)
    return engine, train(engine, "abcd", {"c": STOP_C})


@pytest.fixture(scope="module")
def alone(spec: Any) -> dict[str, Any]:
    from lora_hpo.training.pack.pack_engine import Engine

    out = {}
    for key in "abcd":
        out |= train(Engine(spec), key, {"c": STOP_C})
    return out


def _max_diff(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> float:
    assert x.keys() == y.keys()
    return max(float((x[n] - y[n]).abs().max()) for n in x)


def _rounded(evals: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: round(v, 4) for k, v in e.items()} for e in evals]


def test_four_packed_adapters_equal_each_trained_alone(
    packed: tuple[Any, dict[str, Any]], alone: dict[str, Any]
) -> None:
    _, together = packed
    for key in "abcd":
        diff = _max_diff(together[key]["weights"], alone[key]["weights"])
        print(f"{key}: max |packed - alone| = {diff:.2e}, {together[key]['evals'][-1]}")
        assert diff < 1e-5
        assert _rounded(together[key]["evals"]) == _rounded(alone[key]["evals"])
    assert len(together["c"]["evals"]) == 1 and len(together["a"]["evals"]) == 2  # c stopped
    # the adapters really differ and learn: packing did not make them one
    assert _max_diff(together["a"]["weights"], together["d"]["weights"]) > 1e-3
    final = {round(together[k]["evals"][-1]["eval_loss"], 4) for k in "abcd"}
    assert len(final) == 4 and max(together[k]["evals"][-1]["eval_accuracy"] for k in "abd") > 0.5


def test_a_resumed_adapter_equals_one_that_never_stopped(
    spec: Any, alone: dict[str, Any], tmp_path: Path
) -> None:
    from lora_hpo.training.pack.pack_engine import Engine

    first = Engine(spec)
    train(first, "ab", {"a": 10, "b": 5})
    first.adapters["a"].save(tmp_path / "a-10")
    second = Engine(spec)  # another process, as after a restart: new partners, other steps
    train(second, "d", {"d": 3})
    second.add("a", CONFIGS["a"], resume=tmp_path / "a-10")
    resumed = train(second, "ad", {"d": 12})
    assert _max_diff(resumed["a"]["weights"], alone["a"]["weights"]) < 1e-5
    assert _rounded(resumed["a"]["evals"])[-1] == _rounded(alone["a"]["evals"])[-1]


def test_a_saved_adapter_loads_with_plain_peft_and_scores_the_same(
    packed: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from lora_hpo.training.classification_metrics import classification_metrics
    from lora_hpo.training.demo_assets import existing_model_dir
    from lora_hpo.training.pack.packed_batches import concat_right_padded

    engine, together = packed
    engine.adapters["b"].save(tmp_path / "b")
    labels = engine.data.label_names
    base = AutoModelForSequenceClassification.from_pretrained(
        existing_model_dir("minilm-l6"), num_labels=len(labels)
    )
    model = PeftModel.from_pretrained(base, str(tmp_path / "b")).eval()
    rows = engine.data.eval[:]
    batch = concat_right_padded([rows], engine.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    scores = classification_metrics((logits.numpy(), rows["labels"]))
    assert round(scores["accuracy"], 4) == round(together["b"]["evals"][-1]["eval_accuracy"], 4)
