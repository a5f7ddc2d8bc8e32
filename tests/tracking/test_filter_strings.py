"""MLflow filters that name user-given values, on a real ``mlflow server``: names holding a
quote, a backtick, a backslash or LIKE's wildcards find exactly their own runs and model
versions; a value holding both quotes is refused with a message, not sent."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.tracking.filter_strings import equals, literal, tags_equal
from lora_hpo.tracking.mlflow_store import Store

NAMES = ["bob's study", 'the "big" one', "a`b", "back\\slash", "50%_off"]


def test_each_value_is_quoted_with_the_quote_it_does_not_hold() -> None:
    assert literal("plain") == "'plain'"
    assert literal("bob's") == '"bob\'s"'
    assert literal('say "hi"') == "'say \"hi\"'"
    with pytest.raises(ValueError, match="both ' and"):
        equals("name", 'bob\'s "big" one')


@pytest.mark.slow
def test_runs_and_model_versions_are_found_by_names_holding_quotes(
    mlflow_server: Any, tmp_path: Path
) -> None:
    store = Store(mlflow_server.uri)
    experiment = store.experiment_id(f"filters-{uuid.uuid4().hex[:8]}")
    made = {
        name: store.get_or_create_run(experiment, {"lora_hpo.study": name}, "run", {})
        for name in NAMES
    }
    again = {
        name: store.get_or_create_run(experiment, {"lora_hpo.study": name}, "run", {})
        for name in NAMES
    }
    assert again == made and len(set(made.values())) == len(NAMES)  # no duplicate, no mix-up
    for name, run_id in made.items():
        found = store.client.search_runs([experiment], tags_equal({"lora_hpo.study": name}))
        assert [r.info.run_id for r in found] == [run_id]

    adapter = tmp_path / "checkpoint"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    model = f"bob's adapters {uuid.uuid4().hex[:6]}"
    first, second = made[NAMES[0]], made[NAMES[1]]
    versions = []
    for run_id in (first, second, first):  # the third finds the first's version by name
        hashes = store.log_adapter(run_id, str(adapter), "spec")
        versions.append(store.register(model, run_id, hashes, {}))
    assert versions == ["1", "2", "1"]
    assert store.client.get_registered_model(model).aliases["champion"] == "1"
