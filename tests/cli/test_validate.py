"""`lora-hpo validate`: every bad input exits 2, names the file and the field, no traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.cli.main import main
from tests.conftest import BASE_SPEC, REPO


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        del d[last]

    return mutate


# (id, mutation, field path that must appear, fragment of the message)
BAD: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("wrong type", _set("training.max_steps", "many"), "training.max_steps", "integer"),
    (
        "inverted range",
        _set("space.alpha_ratio", {"low": 4, "high": 1}),
        "space.alpha_ratio",
        "low <= high",
    ),
    ("unknown key", _set("training.max_step", 5), "training.max_step", "did you mean 'max_steps'"),
    ("unknown top key", _set("serach", {}), "serach", "did you mean 'search'"),
    (
        "log low <= 0",
        _set("space.learning_rate", {"low": 0, "high": 1e-3, "log": True}),
        "space.learning_rate.low",
        "log range",
    ),
    (
        "grace > max_steps",
        _set("search.scheduler.grace_period", 30),
        "search.scheduler.grace_period",
        "<= training.max_steps",
    ),
    ("empty choices", _set("space.r", {"choices": []}), "space.r.choices", "at least one"),
    (
        "unknown preset",
        _set("space.target_modules", "attn"),
        "space.target_modules",
        "unknown preset 'attn'",
    ),
    ("fractional gpu > 1", _set("resources.gpu", 1.5), "resources.gpu", "(0, 1] or a whole number"),
    ("missing required", _drop("task"), "task", "is required"),
    ("missing space.r", _drop("space.r"), "space.r", "is required"),
    ("r below 1", _set("space.r", 0), "space.r", ">= 1"),
    ("r choice below 1", _set("space.r", {"choices": [0, 8]}), "space.r.choices[0]", ">= 1"),
    ("ratio not positive", _set("space.alpha_ratio", 0), "space.alpha_ratio", "> 0"),
    (
        "mixed choice types",
        _set("space.r", {"choices": [4, "eight"]}),
        "space.r.choices[1]",
        "integer",
    ),
    (
        "mixed float choices",
        _set("space.lora_dropout", {"choices": [0.1, "x"]}),
        "space.lora_dropout.choices[1]",
        "number",
    ),
    (
        "concurrency > samples",
        _set("search.max_concurrent", 9),
        "search.max_concurrent",
        "<= num_samples",
    ),
    (
        "eval_every > max_steps",
        _set("training.eval_every", 50),
        "training.eval_every",
        "<= max_steps",
    ),
    (
        "metric for other task",
        _set("search.metric", "eval_perplexity"),
        "search.metric",
        "must be one of",
    ),
    ("mode contradicts metric", _set("search.mode", "min"), "search.mode", "mode must be 'max'"),
    ("unknown task", _set("task", "seq2seq"), "task", "must be one of"),
    ("unknown sampler", _set("search.sampler", "tpe2"), "search.sampler", "did you mean 'tpe'"),
    ("unknown demo model", _set("model.demo", "gpt5"), "model.demo", "must be one of"),
    (
        "two model sources",
        _set("model.hub", "bert-base-uncased"),
        "model",
        "exactly one of demo, hub, path",
    ),
    ("two alpha modes", _set("space.lora_alpha", 16), "space", "exactly one of lora_alpha"),
    ("no alpha mode", _drop("space.alpha_ratio"), "space", "exactly one of lora_alpha"),
    (
        "range for a bool",
        _set("space.use_rslora", {"low": 0, "high": 1}),
        "space.use_rslora",
        "cannot be a range",
    ),
    ("bool as string", _set("space.use_rslora", "yes"), "space.use_rslora", "boolean"),
    ("dropout >= 1", _set("space.lora_dropout", 1.0), "space.lora_dropout", "< 1"),
    ("negative gpu", _set("resources.gpu", -1), "resources.gpu", ">= 0"),
    ("zero cpu", _set("resources.cpu", 0), "resources.cpu", "> 0"),
    ("eval split and fraction", _set("data.eval_split", "test"), "data", "not both"),
    ("eval fraction >= 1", _set("data.eval_fraction", 1.5), "data.eval_fraction", "(0, 1)"),
    ("file ext unknown", _set("data", {"files": ["x.txt"]}), "data.files[0]", "extension"),
    ("section not a mapping", _set("training", [1, 2]), "training", "must be a mapping"),
    (
        "reduction factor <= 1",
        _set("search.scheduler.reduction_factor", 1),
        "search.scheduler.reduction_factor",
        "> 1",
    ),
    ("choices and range", _set("space.r", {"choices": [4], "low": 1}), "space.r", "not both"),
    (
        "range key typo",
        _set("space.learning_rate", {"low": 1e-4, "hihg": 1e-3}),
        "space.learning_rate.hihg",
        "did you mean 'high'",
    ),
    ("adalora budget", _set("space.adapter", "adalora"), "", ""),  # valid: checked below
    ("unknown adapter", _set("space.adapter", "dora"), "space.adapter", "must be one of"),
    (
        "demo for other task",
        _set("data.demo", "bbc-news-instruct"),
        "data.demo",
        "is for causal-lm",
    ),
    (
        "empty module list",
        _set("space.target_modules", []),
        "space.target_modules",
        "must not be empty",
    ),
    ("null required", _set("name", None), "name", "got null"),
]
BAD = [b for b in BAD if b[2]]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_exits_2_and_names_the_field(
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    fragment: str,
    write_spec: Any,
    capsys: Any,
) -> None:
    data = copy.deepcopy(BASE_SPEC)
    mutate(data)
    path = write_spec(data)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: " in err, err
    assert fragment in err, err
    assert "Traceback" not in err


def test_at_least_25_distinct_bad_inputs() -> None:
    assert len(BAD) >= 25


def test_malformed_yaml(write_spec: Any, capsys: Any) -> None:
    path = write_spec("name: x\nspace: [unclosed\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: is not valid YAML at line" in err
    assert "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["validate", str(path)]) == 2
    assert f"{path}: file does not exist" in capsys.readouterr().err


def test_every_problem_in_every_file_is_reported(write_spec: Any, capsys: Any) -> None:
    a = copy.deepcopy(BASE_SPEC)
    a["training"]["max_steps"] = "x"
    a["space"]["r"] = 0
    b = copy.deepcopy(BASE_SPEC)
    b["search"]["sampler"] = "nope"
    pa, pb = write_spec(a, "a.yaml"), write_spec(b, "b.yaml")
    assert main(["validate", str(pa), str(pb)]) == 2
    err = capsys.readouterr().err
    assert f"{pa}: training.max_steps" in err
    assert f"{pa}: space.r" in err
    assert f"{pb}: search.sampler" in err
    assert "found 3 problems" in err


def test_valid_file_exits_0_with_guardrail_warnings(write_spec: Any, capsys: Any) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["use_rslora"] = {"choices": [True, False]}
    assert main(["validate", str(write_spec(data))]) == 0
    assert "rsLoRA with r < 8 is reachable" in capsys.readouterr().err


def test_console_script_no_traceback(write_spec: Any) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["r"] = {"low": 16, "high": 4}
    path = write_spec(data)
    exe = Path(sys.executable).with_name("lora-hpo")
    proc = subprocess.run([str(exe), "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}: space.r: low <= high must hold, but got low=16, high=4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_does_not_import_torch_or_ray() -> None:
    code = (
        "import sys; from lora_hpo.cli.main import main; "
        f"main(['validate', r'{REPO / 'search_spaces' / 'quickstart.yaml'}']); "
        "bad = [m for m in ('torch', 'ray', 'transformers', 'peft') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
