"""Cross-field rules for the model and the data sections: exactly one source each, demo names
and their tasks, file extensions, and the splits that ``data.files`` names against
``train_split`` / ``eval_split``. (Checks that read the files are in ``local_checks.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from lora_hpo.spec.problem_rules import at_least, one_of
from lora_hpo.spec.registries import DEMO_DATA, DEMO_MODELS
from lora_hpo.spec.space_params import SplitFiles
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import DataSpec, ModelSpec

FILE_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def check_sources(task: str, m: ModelSpec, d: DataSpec) -> Iterator[Problem]:
    yield from _check_model(task, m)
    yield from _check_data(task, d)


def _check_model(task: str, m: ModelSpec) -> Iterator[Problem]:
    yield from one_of(m, ("demo", "hub", "path"), "model")
    if m.demo is not None:
        if m.demo not in DEMO_MODELS:
            yield Problem("model.demo", f"must be one of {sorted(DEMO_MODELS)}, but got {m.demo!r}")
        elif task not in DEMO_MODELS[m.demo].tasks:
            tasks = list(DEMO_MODELS[m.demo].tasks)
            yield Problem("model.demo", f"{m.demo!r} supports tasks {tasks}, not {task!r}")


def _check_data(task: str, d: DataSpec) -> Iterator[Problem]:
    yield from one_of(d, ("demo", "hub", "files"), "data")
    if d.demo is not None:
        if d.demo not in DEMO_DATA:
            yield Problem("data.demo", f"must be one of {sorted(DEMO_DATA)}, but got {d.demo!r}")
        elif DEMO_DATA[d.demo].task != task:
            yield Problem("data.demo", f"{d.demo!r} is for {DEMO_DATA[d.demo].task}, not {task}")
    if d.files is not None:
        yield from _check_files(d)
    if d.eval_split is not None and d.eval_fraction is not None:
        yield Problem("data", "give eval_split or eval_fraction, not both")
    if d.eval_fraction is not None and not 0 < d.eval_fraction < 1:
        yield Problem("data.eval_fraction", f"must be in (0, 1), but got {d.eval_fraction}")
    if (d.prompt_field is None) != (d.completion_field is None):
        yield Problem("data", "prompt_field and completion_field go together; give both or neither")
    if d.prompt_field is not None and task != "causal-lm":
        yield Problem("data.prompt_field", f"is for task causal-lm, not {task}")
    yield from at_least(d.max_length, 8, "data.max_length")
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(d, name) is not None:
            yield from at_least(getattr(d, name), 1, f"data.{name}")


def file_field(d: DataSpec, split: str, index: int) -> str:
    """The dotted field of one file: ``data.files[0]`` or ``data.files.validation[0]``."""
    return (
        f"data.files.{split}[{index}]"
        if isinstance(d.files, SplitFiles)
        else f"data.files[{index}]"
    )


def _check_files(d: DataSpec) -> Iterator[Problem]:
    """Extensions, and the splits the file mapping names against train_split / eval_split."""
    splits, mapping = d.split_files(), isinstance(d.files, SplitFiles)
    for split, files in splits.items():
        for i, f in enumerate(files):
            if d.format is None and PurePath(f).suffix.lower() not in FILE_FORMATS:
                formats = sorted(FILE_FORMATS)
                yield Problem(
                    file_field(d, split, i),
                    f"extension must be one of {formats} (or set data.format), got {f!r}",
                )
    names = sorted(splits)
    if mapping and d.train_split not in splits:
        yield Problem(
            "data.train_split",
            f"must be one of the splits in data.files {names}, but got {d.train_split!r}",
        )
    if d.eval_split is not None and d.eval_split not in splits:
        hint = "" if mapping else "; give data.files as a mapping {train: [...], validation: [...]}"
        yield Problem(
            "data.eval_split",
            f"must be one of the splits in data.files {names}, but got {d.eval_split!r}{hint}",
        )
    if mapping and len(splits) > 1 and d.eval_split is None and d.eval_fraction is None:
        others = [n for n in names if n != d.train_split]
        yield Problem(
            "data.eval_split",
            f"data.files names the splits {names}; set eval_split to one of {others}"
            " (or eval_fraction to hold out part of the train split)",
        )
