"""The champion's MLflow model: saved from an export bundle, ``mlflow.pyfunc.load_model``
loads base + adapter and ``predict`` answers a data frame of prompts with the completions
that ``lora-hpo predict`` gives the same rows; its signature names the prompt column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_study

pytestmark = pytest.mark.slow


def _bundle(tmp: Path) -> Path:
    """A causal-LM export bundle: the tiny Llama's tokenizer, a fresh LoRA adapter, the spec."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lora_hpo.files.file_names import SPEC_FILE
    from tests.tiny_models import write_copy_task, write_tiny_llama

    write_tiny_llama(tmp / "model")
    write_copy_task(tmp / "copy.jsonl")
    bundle = tmp / "bundle"
    base = AutoModelForCausalLM.from_pretrained(tmp / "model")
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(base, lora).save_pretrained(bundle)
    AutoTokenizer.from_pretrained(tmp / "model").save_pretrained(bundle)
    (bundle / SPEC_FILE).write_text(yaml.safe_dump(tiny_study(tmp)))
    return bundle


def test_the_pyfunc_predicts_what_lora_hpo_predict_does(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from lora_hpo.analysis.bundle_predict import predict
    from lora_hpo.analysis.champion_model import save_adapter_model

    bundle = _bundle(tmp_path)
    save_adapter_model(bundle, tmp_path / "mlmodel")
    rows = [json.loads(line) for line in (tmp_path / "copy.jsonl").read_text().splitlines()[:3]]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    expected = [r["prediction"] for r in predict(bundle, tmp_path / "rows.jsonl", 4)[0]]

    model = mlflow.pyfunc.load_model(str(tmp_path / "mlmodel"))
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["prompt"]
    frame = pd.DataFrame({"prompt": [r["prompt"] for r in rows]})
    got = model.predict(frame, params={"max_new_tokens": 4})
    assert list(got) == expected and all(isinstance(x, str) for x in got)
