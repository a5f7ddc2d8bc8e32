"""The export's model card is a Hugging Face model card: its metadata names the base model by
its hub id (so the Hub links it), ``library_name: peft``, the task's pipeline, the dataset and
the study's metric with its value; a local base model is named by no hub id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from lora_hpo.analysis.export_bundle import model_card
from lora_hpo.spec.spec_loader import parse_spec

ABOUT = {
    "experiment": "bbc-topics",
    "rank": 8,
    "metric": "eval_accuracy",
    "value": 0.925,
    "trial_id": "a1b2",
    "status": "completed",
    "run_id": "r1",
    "params": {"r": 8, "lora_alpha": 16, "learning_rate": 2e-4},
    "lineage": {"base_model": "minilm-l6", "dataset": "bbc-news", "dataset_fingerprint": "f"},
}


def _saved(spec: dict[str, Any], tmp_path: Path) -> Any:
    model_card(parse_spec(spec), ABOUT).save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md")  # as the Hub and huggingface_hub read it


def test_a_demo_base_model_is_named_by_its_hub_id(
    base_spec: dict[str, Any], tmp_path: Path
) -> None:
    card = _saved(base_spec, tmp_path)
    data = card.data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.library_name == "peft" and data.pipeline_tag == "text-classification"
    assert data.metrics == ["eval_accuracy"] and "lora" in data.tags
    (result,) = data.eval_results
    assert (result.metric_type, result.metric_value) == ("eval_accuracy", 0.925)
    assert result.dataset_name == "bbc-news"
    assert "PeftModel.from_pretrained" in card.text  # the text is still there


def test_a_hub_model_and_dataset_are_linked_and_a_local_model_is_not(
    base_spec: dict[str, Any], tmp_path: Path
) -> None:
    hub = base_spec | {
        "task": "causal-lm",
        "model": {"hub": "HuggingFaceTB/SmolLM2-360M"},
        "data": {"hub": "org/chats", "text_field": "text", "max_length": 32},
    }
    data = _saved(hub, tmp_path).data
    assert data.base_model == "HuggingFaceTB/SmolLM2-360M" and data.datasets == ["org/chats"]
    assert data.pipeline_tag == "text-generation"
    local = base_spec | {"model": {"path": str(tmp_path)}}
    assert _saved(local, tmp_path).data.base_model is None
