"""`lora-hpo report` and the report `run` logs to the study's MLflow parent run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.cli.main import main
from tests.conftest import tiny_study

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def test_run_logs_the_report_and_report_draws_it(
    tiny_assets: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    data = tiny_study(tiny_assets, **{"search.num_samples": 4, "training.max_steps": 10})
    data["space"]["r"] = {"choices": [4, 8, 16]}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(data))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["run", "tiny.yaml", "--tracking-uri", uri]) == 0

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    (study,) = client.search_runs([exp.experiment_id], "tags.`lora_hpo.role` = 'study'")
    logged = {a.path for a in client.list_artifacts(study.info.run_id, "report")}
    for name in (
        "rank_plateau",
        "scale",
        "learning_rate",
        "ridge",
        "importance",
        "learning_curves",
    ):
        assert f"report/{name}.png" in logged
    assert "report/index.html" in logged

    out = tmp_path / "report"
    assert main(["report", "--experiment", "tiny", "--tracking-uri", uri, "--out", str(out)]) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6 and all(p.read_bytes().startswith(PNG) for p in pngs)
    page = (out / "index.html").read_text()
    assert all(p.name in page for p in pngs)


def test_report_on_unknown_experiment_exits_2(tmp_path: Path, capsys: Any) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["report", "--experiment", "nope", "--tracking-uri", uri]) == 2
    assert "--experiment: no MLflow experiment 'nope'" in capsys.readouterr().err
