"""``lora-hpo best`` / ``export`` and the notebook API, read back from a real mlflow server:
the ranking agrees with MLflow itself, the exported adapter loads and scores what was logged,
and ``models:/NAME@champion`` is the same adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.analysis.best_configs import best_configs, export_adapter
from lora_hpo.analysis.trial_runs import typed
from lora_hpo.cli.main import main
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.tracking.mlflow_store import sha256
from tests.mlflow_server import (
    MlflowServer,
    TrackedStudy,
    free_port,
    local_ray_with_token,
    shared_study,
)


def test_params_come_back_typed() -> None:
    assert [typed(v) for v in ("8", "True", "0.001", "1e-05", "attention", "q,v")] == [
        8,
        True,
        0.001,
        1e-05,
        "attention",
        "q,v",
    ]


def test_an_unreachable_server_is_one_line_and_exit_1(capsys: Any) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    assert main(["best", "--experiment", "x", "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: MLflow at {uri}")


@pytest.fixture(scope="module")
def tracked(mlflow_server: MlflowServer, tiny_assets: Path) -> Iterator[TrackedStudy]:
    with local_ray_with_token():
        yield shared_study(mlflow_server, tiny_assets)


def direct_ranking(uri: str, experiment: str) -> list[Any]:
    """What MLflow itself says: trial runs by eval_loss, lowest first, failed ones left out."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs(
        [experiment_id], "tags.`lora_hpo.role` = 'trial'", order_by=["metrics.eval_loss ASC"]
    )
    return [r for r in runs if r.data.tags["status"] != "failed" and "eval_loss" in r.data.metrics]


@pytest.mark.slow
def test_best_json_agrees_with_a_direct_mlflow_query(tracked: TrackedStudy, capsys: Any) -> None:
    args = ["best", "--experiment", "tracked", "--top", "3", "--json"]
    assert main([*args, "--tracking-uri", tracked.uri]) == 0
    entries = json.loads(capsys.readouterr().out)
    direct = direct_ranking(tracked.uri, "tracked")[:3]
    assert [e["run_id"] for e in entries] == [r.info.run_id for r in direct]
    for entry, run in zip(entries, direct, strict=True):
        assert entry["metrics"]["eval_loss"] == run.data.metrics["eval_loss"]
        params = entry["params"]
        assert params["r"] == int(run.data.params["r"]) and isinstance(params["use_rslora"], bool)
        assert params["lora_alpha"] == float(run.data.params["lora_alpha"])
        assert params["learning_rate"] == float(run.data.params["learning_rate"])
    assert entries[0]["trial_id"] == tracked.result.best.trial_id
    assert best_configs("tracked", top=3, tracking_uri=tracked.uri) == entries


@pytest.mark.slow
def test_best_table(tracked: TrackedStudy, capsys: Any) -> None:
    assert main(["best", "--experiment", "tracked", "--tracking-uri", tracked.uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["rank", "eval_loss", "r"]
    best = direct_ranking(tracked.uri, "tracked")[0]
    assert out[2].split()[0] == "1" and out[2].split()[-1] == best.info.run_id


@pytest.mark.slow
def test_exported_adapter_loads_and_scores_the_logged_eval_loss(
    tracked: TrackedStudy, tmp_path: Path, capsys: Any
) -> None:
    from peft import PeftModel
    from transformers import Trainer

    from lora_hpo.spec.search_space import SEARCHABLE, derive
    from lora_hpo.training.base_model import release
    from lora_hpo.training.trainer_trial import prepare, training_args
    from lora_hpo.training.trial_data import collator

    out = tmp_path / "adapter"
    args = ["export", "--experiment", "tracked", "--out", str(out), "--tracking-uri", tracked.uri]
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {  # the adapter, its record and spec, the tokenizer, the model card
        "adapter_model.safetensors",
        "adapter_config.json",
        "lora_hpo_trial.json",
        "lora_hpo_spec.yaml",
        "params.json",
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    about = json.loads((out / "params.json").read_text())
    spec = parse_spec(yaml.safe_load((out / "lora_hpo_spec.yaml").read_text()))
    sampled = {k: v for k, v in about["params"].items() if k in SEARCHABLE}
    params = derive(spec.space, sampled)
    entry, data = prepare(spec)
    model = PeftModel.from_pretrained(entry.model, str(out))
    entry.peft = model  # release() takes the adapter off the cached base model again
    try:
        assert model.peft_config["default"].r == about["params"]["r"]
        trainer = Trainer(
            model=model,
            args=training_args(spec, params, str(tmp_path / "eval")),
            eval_dataset=data.eval,
            data_collator=collator(entry.tokenizer, spec.task),
        )
        loss = trainer.evaluate()["eval_loss"]
    finally:
        release(entry)
    assert loss == pytest.approx(about["metrics"]["eval_loss"], rel=1e-4)


@pytest.mark.slow
def test_champion_alias_is_the_exported_adapter(
    tracked: TrackedStudy, tmp_path: Path, monkeypatch: Any
) -> None:
    import mlflow

    out = export_adapter("tracked", tmp_path / "best", tracking_uri=tracked.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked.uri)  # models:/ reads the global URI
    got = Path(
        mlflow.artifacts.download_artifacts(
            "models:/tracked@champion", dst_path=str(tmp_path / "c")
        )
    )
    assert (got / "MLmodel").is_file()  # an MLflow model, its export bundle inside
    registered = {p.name: sha256(p) for p in (got / "artifacts" / "bundle").iterdir()}
    assert "adapter_model.safetensors" in registered
    assert registered == {name: sha256(out / name) for name in registered}  # the same files


@pytest.mark.slow
def test_bad_input_exits_2_naming_the_flag(
    tracked: TrackedStudy, tmp_path: Path, capsys: Any
) -> None:
    from mlflow import MlflowClient

    uri = ["--tracking-uri", tracked.uri]
    MlflowClient(tracked.uri).create_experiment("empty")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    ranked = best_configs("tracked", 10, tracking_uri=tracked.uri)
    export = ["export", "--experiment", "tracked", "--out"]
    cases = {
        "--experiment: no MLflow experiment 'nope'": ["best", "--experiment", "nope"],
        "--experiment: 'empty'": ["best", "--experiment", "empty"],
        "--top: must be >= 1, but got 0": ["best", "--experiment", "tracked", "--top", "0"],
        "--out": [*export, str(taken)],
        f"has {len(ranked)} ranked trial run(s), so there is no rank 9": [
            *export, str(tmp_path / "n"), "--rank", "9"
        ],
        "no adapter artifact": [  # log_adapters: top-k, top_k: 2
            *export, str(tmp_path / "m"), "--rank", str(ranked[2]["rank"])
        ],
    }  # fmt: skip
    for message, argv in cases.items():
        assert main([*argv, *uri]) == 2, argv
        assert message in capsys.readouterr().err, argv
