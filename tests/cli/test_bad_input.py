"""Bad input everywhere: spec files that are not specs, numbers out of range, data files that
cannot be used, and bad command-line arguments. Each exits 2, names the file and the field,
and prints no traceback; nothing is written."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.cli.main import main
from tests.conftest import BASE_SPEC

ROWS = [{"text": f"row {i}", "label": "a" if i % 2 else "b"} for i in range(20)]


def _spec_with(tmp: Path, **data: Any) -> Path:
    spec = copy.deepcopy(BASE_SPEC)
    spec["data"] = {"max_length": 32} | data
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return tmp / name


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(r) for r in rows)


# --- spec files that are not specs (id, how to make it, fragment of the message) ------------
Maker = Callable[[Path], Path]


def _file(content: bytes) -> Maker:
    def make(tmp: Path) -> Path:
        (tmp / "s.yaml").write_bytes(content)
        return tmp / "s.yaml"

    return make


BOMB = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n".encode()
    for p, c in zip("abcdef", "bcdefg", strict=True)
)
FILES: list[tuple[str, Maker, str]] = [
    ("not utf-8", _file("name: caf\u00e9\n".encode("latin-1")), "is not UTF-8 text: byte 0xe9"),
    ("binary", _file(b"\x7fELF\x00\x01\x02"), "is a binary file"),
    ("empty", _file(b""), "is empty: a study needs"),
    ("only comments", _file(b"# nothing here\n"), "is empty"),
    ("a yaml bomb", _file(BOMB), "expands to more than 100,000 values"),
    ("too large", _file(b"# " + b"x" * (1 << 20) + b"\n"), "a search-space file is at most"),
    ("a list, not a mapping", _file(b"- 1\n- 2\n"), "(top level): must be a mapping"),
    ("a directory", lambda tmp: tmp, "is a directory, not a search-space file"),
]


@pytest.mark.parametrize(("make", "fragment"), [f[1:] for f in FILES], ids=[f[0] for f in FILES])
def test_a_spec_file_that_is_no_spec_exits_2(
    make: Maker, fragment: str, tmp_path: Path, capsys: Any
) -> None:
    path = make(tmp_path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and fragment in err, err
    assert "Traceback" not in err


# --- numbers out of range (id, dotted field, value, fragment) -------------------------------
NUMBERS: list[tuple[str, str, Any, str]] = [
    ("huge max_steps", "training.max_steps", 10**30, "must be between -inf and 100000000"),
    ("huge int anywhere", "training.gradient_accumulation", 2**70, "between -inf and"),
    ("infinite lr", "space.learning_rate", float("inf"), "must be a finite number"),
    ("nan ratio", "space.alpha_ratio", float("nan"), "must be a finite number"),
    ("negative training seed", "training.seed", -7, "must be between 0 and 4294967295"),
    ("negative search seed", "search.seed", -7, "must be between 0 and 4294967295"),
    ("seed beyond numpy", "training.seed", 2**40, "must be between 0 and 4294967295"),
    ("max_length beyond the model", "data.max_length", 4096, "<= 512, the longest input"),
    ("huge batch", "training.batch_size", 10**9, "must be between"),
    ("huge num_samples", "search.num_samples", 10**9, "must be between"),
]


@pytest.mark.parametrize(
    ("field", "value", "fragment"), [n[1:] for n in NUMBERS], ids=[n[0] for n in NUMBERS]
)
def test_numbers_out_of_range_exit_2(
    field: str, value: Any, fragment: str, write_spec: Any, capsys: Any
) -> None:
    data = copy.deepcopy(BASE_SPEC)
    node = data
    *parents, last = field.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    path = write_spec(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: " in err and fragment in err, err
    assert "Traceback" not in err


# --- data that cannot be used (id, data section from tmp, field, fragment) ------------------
DataMaker = Callable[[Path], dict[str, Any]]
DATA: list[tuple[str, DataMaker, str, str]] = [
    ("missing file", lambda t: {"files": ["nope.jsonl"]}, "data.files[0]", "does not exist"),
    (
        "empty file",
        lambda t: {"files": [_rows(t, "e.jsonl", "").name]},
        "data.files[0]",
        "is empty",
    ),
    (
        "malformed json line",
        lambda t: {"files": [_rows(t, "m.jsonl", _jsonl(ROWS) + '\n{"text": "x",\n').name]},
        "data.files[0]",
        "line 21 is not valid JSON",
    ),
    (
        "json line not an object",
        lambda t: {"files": [_rows(t, "n.jsonl", _jsonl(ROWS[:2]) + "\n[3]\n").name]},
        "data.files[0]",
        "line 3 is not a JSON object but list",
    ),
    (
        "missing column",
        lambda t: {"files": [_rows(t, "c.jsonl", _jsonl(ROWS)).name], "label_field": "topic"},
        "data.label_field",
        "column 'topic' is not in data.files[0]",
    ),
    (
        "csv header only",
        lambda t: {"files": [_rows(t, "h.csv", "text,label\n").name]},
        "data.files[0]",
        "has a header but no rows",
    ),
    (
        "not parquet",
        lambda t: {"files": [_rows(t, "p.parquet", "text,label\n").name]},
        "data.files[0]",
        "is not a parquet file",
    ),
    (
        "data not utf-8",
        lambda t: {"files": [_rows(t, "u.jsonl", b'{"text": "caf\xe9"}\n').name]},
        "data.files[0]",
        "is not UTF-8",
    ),
    (
        "eval split missing from mapping",
        lambda t: {
            "files": {"train": [_rows(t, "tr.jsonl", _jsonl(ROWS)).name]},
            "eval_split": "validation",
        },
        "data.eval_split",
        "must be one of the splits in data.files ['train']",
    ),
    (
        "mapping without eval_split",
        lambda t: {
            "files": {
                "train": [_rows(t, "tr.jsonl", _jsonl(ROWS)).name],
                "validation": [_rows(t, "ev.jsonl", _jsonl(ROWS)).name],
            }
        },
        "data.eval_split",
        "set eval_split to one of ['validation']",
    ),
    (
        "eval_split with the list form",
        lambda t: {"files": [_rows(t, "l.jsonl", _jsonl(ROWS)).name], "eval_split": "test"},
        "data.eval_split",
        "give data.files as a mapping",
    ),
    ("empty split mapping", lambda t: {"files": {}}, "data.files", "at least one split"),
    (
        "train split not in mapping",
        lambda t: {
            "files": {"training": [_rows(t, "x.jsonl", _jsonl(ROWS)).name]},
            "eval_fraction": 0.2,
        },
        "data.train_split",
        "must be one of the splits in data.files ['training']",
    ),
]


@pytest.mark.parametrize(
    ("make", "field", "fragment"), [d[1:] for d in DATA], ids=[d[0] for d in DATA]
)
def test_unusable_data_exits_2_naming_the_file(
    make: DataMaker, field: str, fragment: str, tmp_path: Path, capsys: Any
) -> None:
    path = _spec_with(tmp_path, **make(tmp_path))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}" in err and fragment in err, err
    assert "Traceback" not in err


# --- command-line arguments (id, argv from tmp, fragment) -----------------------------------
Argv = Callable[[Path], list[str]]


def _good(tmp: Path) -> str:
    path = tmp / "good.yaml"
    path.write_text(yaml.safe_dump(BASE_SPEC))
    return str(path)


ARGS: list[tuple[str, Argv, str]] = [
    ("--set not yaml", lambda t: ["show-space", _good(t), "--set", "space.r=[1,"], "--set value"),
    ("--set into a scalar", lambda t: ["show-space", _good(t), "--set", "name.x=1"], "descend"),
    ("--set key only", lambda t: ["show-space", _good(t), "--set", "training.seed"], "key=value"),
    ("best --top 0", lambda t: ["best", "--experiment", "x", "--top", "0"], "--top: must be >= 1"),
    (
        "export --rank 0",
        lambda t: ["export", "--experiment", "x", "--out", str(t / "o"), "--rank", "0"],
        "--rank: must be >= 1",
    ),
    (
        "predict: no adapter",
        lambda t: ["predict", "--adapter", str(t / "no"), "--input", _good(t)],
        "--adapter",
    ),
    (
        "predict: not an export",
        lambda t: ["predict", "--adapter", str(t), "--input", _good(t)],
        "is not a lora-hpo export",
    ),
    (
        "resume: unknown study",
        lambda t: ["resume", "nope", "--storage-path", str(t)],
        "NAME_OR_PATH: no study 'nope'",
    ),
    ("status: no address", lambda t: ["status", "raysubmit_1"], "--address: not given"),
    (
        "submit: bad address",
        lambda t: ["submit", _good(t), "--address", "ftp://x", "--storage-path", "s3://b/s"],
        "--address: must be the dashboard URL",
    ),
    (
        "submit: no shared storage",
        lambda t: ["submit", _good(t), "--address", "http://127.0.0.1:1"],
        "--storage-path: a study submitted to a cluster",
    ),
    ("transfer: missing flags", lambda t: ["transfer", "--target", "512"], "give --study"),
]


@pytest.mark.parametrize(("argv", "fragment"), [a[1:] for a in ARGS], ids=[a[0] for a in ARGS])
def test_bad_arguments_exit_2_naming_the_flag(
    argv: Argv, fragment: str, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert "Traceback" not in err


def test_at_least_40_distinct_bad_inputs() -> None:
    from tests.cli.test_validate import BAD

    assert len(FILES) + len(NUMBERS) + len(DATA) + len(ARGS) + len(BAD) >= 40
