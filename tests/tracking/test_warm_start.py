"""Warm start on a real ``mlflow server``: a study started with ``--warm-start`` after an
earlier study of the same model and data gets that study's best configs with their results,
says so before its live view and on its MLflow run; a study on other data of the same task
type gets their step size as its prior; another model matches nothing."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_process import lora_hpo
from tests.conftest import tiny_study

pytestmark = pytest.mark.slow


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lora_hpo(cwd, *args)


def _spec(tiny_assets: Path, name: str, **over: Any) -> dict[str, Any]:
    base = {"search.num_samples": 4, "search.sampler": "lora", "search.scheduler": {"type": "none"}}
    data = tiny_study(tiny_assets, **(base | over))
    return data | {"name": name, "task_type": "instruction-tuning"}


def _study_run(uri: str, experiment: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([exp.experiment_id], "tags.`lora_hpo.role` = 'study'")
    return run


def test_warm_start_from_an_earlier_study(
    tiny_assets: Path, tmp_path: Path, mlflow_server: Any
) -> None:
    from mlflow import MlflowClient

    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.tracking.warm_start import find_warm_start

    track = ["--tracking-uri", mlflow_server.uri, "--storage-path", str(tmp_path / "studies")]
    # data of this test's own (the server and the tiny model are the session's, and other
    # studies on them must not match): the tiny task plus one row
    data = tmp_path / "data.jsonl"
    row = '{"prompt": "warm start", "completion": " ok"}\n'
    data.write_text((tiny_assets / "copy.jsonl").read_text().rstrip("\n") + "\n" + row)
    mine = {"data.files": [str(data)]}
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump(_spec(tiny_assets, "warm-first", **mine)))
    _cli(tmp_path, "run", str(first), *track)
    earlier = _study_run(mlflow_server.uri, "warm-first")
    assert earlier.data.tags["lora_hpo.task_type"] == "instruction-tuning"

    again = tmp_path / "again.yaml"
    again.write_text(
        yaml.safe_dump(_spec(tiny_assets, "warm-again", **mine, **{"search.num_samples": 2}))
    )
    out = _cli(tmp_path, "run", str(again), "--warm-start", *track).stdout
    assert (
        "warm start from warm-first: 3 config(s), handed to the searcher with their results" in out
    )
    tags = _study_run(mlflow_server.uri, "warm-again").data.tags
    assert (
        tags["lora_hpo.warm_start"] == "results"
        and tags["lora_hpo.warm_start.studies"] == "warm-first"
    )
    client = MlflowClient(mlflow_server.uri)
    sources = [client.get_run(r) for r in tags["lora_hpo.warm_start.runs"].split(",")]
    assert len(sources) == 3 and all(r.data.tags["status"] == "completed" for r in sources)
    assert all(r.data.tags["mlflow.parentRunId"] == earlier.info.run_id for r in sources)
    values = [r.data.metrics["eval_loss"] for r in sources]
    assert values == sorted(values)  # the best three, best first

    # other data of the same task type: the earlier best step sizes centre the prior
    other = tmp_path / "other.jsonl"
    other.write_text(data.read_text().replace("a", "b"))
    spec = parse_spec(_spec(tiny_assets, "warm-other", **{"data.files": [str(other)]}), "o.yaml")
    warm = find_warm_start(spec, mlflow_server.uri)
    assert warm.mode == "prior" and {t.experiment for t in warm.trials} <= {
        "warm-first",
        "warm-again",
    }
    steps = [t.step_size for t in warm.trials]
    assert warm.step_size == pytest.approx(math.exp(sum(map(math.log, steps)) / len(steps)))
    assert "centres the prior" in warm.lines("eval_loss")[0]

    # another model: nothing matches
    spec = parse_spec(_spec(tiny_assets, "warm-none", **{"model.path": str(tmp_path)}), "n.yaml")
    assert find_warm_start(spec, mlflow_server.uri).mode == "none"
