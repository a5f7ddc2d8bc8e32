"""``lora-hpo --version`` and ``--json``: one JSON document on stdout, the human lines on
stderr, the same exit codes (``run --json``: tests/cli/test_driver_signals.py; ``status --json``:
tests/cluster/test_jobs_client.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lora_hpo import __version__
from lora_hpo.cli.main import main
from tests.conftest import BASE_SPEC, REPO

EXE = Path(sys.executable).with_name("lora-hpo")


def test_version_prints_lora_hpo_and_its_libraries_and_exits_0() -> None:
    proc = subprocess.run([str(EXE), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"lora-hpo {__version__}"
    assert [x.split()[0] for x in lines[1:]] == [
        "ray", "optuna", "peft", "transformers", "torch", "mlflow"
    ]  # fmt: skip
    assert all(len(x.split()) == 2 for x in lines[1:]), lines  # a version each: all installed
    assert proc.stderr == ""


def test_version_imports_none_of_the_libraries() -> None:
    code = (
        "import sys; from lora_hpo.cli.main import main\n"
        "try: main(['--version'])\n"
        "except SystemExit as e: code = e.code\n"
        "heavy = ('torch', 'ray', 'transformers', 'peft', 'mlflow')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "sys.exit(f'{code} {bad}' if code or bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_validate_json_on_a_good_spec(write_spec: Any, capsys: Any) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["use_rslora"] = {"choices": [True, False]}
    path = write_spec(data)
    assert main(["validate", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["valid"] is True and doc["problems"] == []
    (entry,) = doc["files"]
    assert entry["file"] == str(path) and entry["valid"] is True
    assert entry["study"] == "t" and entry["task"] == "sequence-classification"
    assert any("rsLoRA with r < 8 is reachable" in w for w in entry["warnings"]), entry
    assert "rsLoRA with r < 8 is reachable" in err  # stderr keeps the human lines


def test_validate_json_on_a_bad_spec_exits_2_with_the_problems_on_stdout(
    write_spec: Any,
) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["r"] = {"low": 16, "high": 4}
    data["training"]["max_step"] = 5
    bad = write_spec(data, "bad.yaml")
    good = REPO / "search_spaces" / "quickstart.yaml"
    proc = subprocess.run(
        [str(EXE), "validate", "--json", str(bad), str(good)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False
    assert [(f["file"], f["valid"]) for f in doc["files"]] == [(str(bad), False), (str(good), True)]
    fields = {p["field"]: p for p in doc["problems"]}
    assert fields["space.r"] == {
        "file": str(bad),
        "field": "space.r",
        "message": "low <= high must hold, but got low=16, high=4",
    }
    assert "did you mean 'max_steps'" in fields["training.max_step"]["message"]
    assert doc["error"].startswith("found 2 problems")
    assert f"{bad}: space.r: low <= high must hold, but got low=16, high=4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_to_another_command_gives_an_error_document(write_spec: Any, capsys: Any) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["r"] = 0
    assert main(["show-space", str(write_spec(data)), "--json"]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["problems"] == [
        {
            "file": doc["problems"][0]["file"],
            "field": "space.r",
            "message": "must be >= 1, but got 0",
        }
    ]
    assert "space.r: must be >= 1, but got 0" in doc["error"] and doc["error"] in err


def test_show_space_json_holds_what_the_text_says(capsys: Any) -> None:
    spec = str(REPO / "search_spaces" / "instruction-tuning.yaml")
    assert main(["show-space", spec, "--set", "search.pack=2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main(["show-space", spec, "--set", "search.pack=2"]) == 0
    text = capsys.readouterr().out
    assert (doc["study"], doc["task"], doc["metric"], doc["mode"]) == (
        "instruction-tuning", "causal-lm", "eval_loss", "min"
    )  # fmt: skip
    params = {p["name"]: p for p in doc["params"]}
    assert params["r"] == {"name": "r", "kind": "CategoricalDistribution", "choices": [16, 32, 64]}
    lr = params["learning_rate"]
    assert (lr["kind"], lr["low"], lr["high"], lr["log"]) == ("FloatDistribution", 3e-5, 1e-3, True)
    assert params["lora_dropout"] == {"name": "lora_dropout", "kind": "fixed", "value": 0.05}
    assert params["lora_alpha"]["kind"] == "derived" and params["lora_alpha"]["rule"] in text
    for p in doc["params"]:
        assert p["name"] in text
    search = doc["search"]
    assert search["sampler"] == "lora" and search["early_stopping"]["type"] == "curve"
    prior = search["prior"]
    assert prior["rank_band"] == [16, 64] and prior["max_steps"] == 300
    assert f"hidden size {prior['hidden_size']}" in text
    memory = doc["memory"]
    assert memory["estimated"] is True and memory["line"] in text
    assert memory["total_bytes"] == sum(
        memory[k] for k in ("weights_bytes", "adapter_bytes", "activations_bytes", "overhead_bytes")
    )
    pack_mib = memory["pack"]["total_bytes"] / 2**20
    assert memory["pack"]["size"] == 2 and f"per pack of 2: {pack_mib:,.0f} MiB" in text
    assert doc["packing"] and doc["packing"] in text
