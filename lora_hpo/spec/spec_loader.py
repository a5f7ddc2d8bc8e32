"""Search-space files -> StudySpec: read safely (``yaml_reading.py``), ``--set`` overrides, parse
(``spec_parse.py``), cross-field checks (``spec_checks.py``), paths made absolute against the spec's
folder (``spec_paths.py``); every problem in one SpecError. Also the spec's stable hash and its
file form. No torch, ray or optuna import here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml

from lora_hpo.spec.space_params import Choices, Fixed, Range, SplitFiles
from lora_hpo.spec.spec_checks import check_sections
from lora_hpo.spec.spec_errors import Problem, SpecError
from lora_hpo.spec.spec_parse import Collector, section_fields
from lora_hpo.spec.spec_paths import resolve_paths
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.yaml_reading import load_yaml, read_yaml, yaml_problem


def apply_overrides(data: dict[str, Any], overrides: list[str], out: Collector) -> None:
    """``--set training.max_steps=50``: the value is parsed as YAML, the key as a dotted path."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            out.add("--set", f"must look like key=value, but got {item!r}")
            continue
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                out.add(key, f"--set cannot descend into {part!r}, a {type(child).__name__}")
                break
            node = child
        else:
            try:
                node[parts[-1]] = load_yaml(raw)
            except yaml.YAMLError as exc:
                shown = raw if len(raw) <= 80 else raw[:77] + "..."
                out.add(key, f"--set value {shown!r} {yaml_problem(exc)}")
            except ValueError as exc:
                out.add(key, f"--set value {exc}")


def parse_spec(
    data: Any, file: str = "", overrides: list[str] | None = None, base: Path | None = None
) -> StudySpec:
    """Build and check a spec from already-parsed YAML; raise SpecError listing every problem.
    Relative paths resolve against ``base``: the spec file's folder, else the working
    directory."""
    out = Collector(file)
    if isinstance(data, dict) and overrides:
        apply_overrides(data, overrides, out)
    sections = section_fields(data, StudySpec, "", out)
    if sections is None:
        raise SpecError(out.problems)
    failed = {p.path.split(".")[0].split("[")[0] for p in out.problems}
    clean = {k: v for k, v in sections.items() if k not in failed}
    for f in dataclasses.fields(StudySpec):  # absent optional sections take their defaults
        if f.name not in data and f.default_factory is not dataclasses.MISSING:
            clean[f.name] = f.default_factory()
    out.problems.extend(dataclasses.replace(p, file=file) for p in check_sections(clean))
    if out.problems:
        raise SpecError(out.problems)
    folder = base if base is not None else (Path(file).parent if file else Path.cwd())
    return resolve_paths(StudySpec(**sections), folder)


def load_spec(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Load one search-space file; raise SpecError naming the file and every problem in it."""
    path = Path(path)
    out = Collector(str(path))
    data = read_yaml(path, out)
    if out.problems:
        raise SpecError(out.problems)
    return parse_spec(data, str(path), overrides)


def load_specs(paths: list[str]) -> list[StudySpec]:
    """Load several files, collecting the problems of all of them before raising."""
    specs: list[StudySpec] = []
    problems: list[Problem] = []
    for p in paths:
        try:
            specs.append(load_spec(p))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return specs


def spec_hash(spec: StudySpec) -> str:
    """A stable short hash of the resolved spec (what ran, not how the file was spelled)."""
    blob = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as plain YAML-able data, in the file dialect (so it reloads)."""

    def convert(obj: Any) -> Any:
        if isinstance(obj, Fixed):
            return convert(obj.value)
        if isinstance(obj, Range):
            d = {"low": obj.low, "high": obj.high, "log": obj.log}
            return d | ({"step": obj.step} if obj.step is not None else {})
        if isinstance(obj, Choices):
            return {"choices": [convert(v) for v in obj.values]}
        if isinstance(obj, SplitFiles):
            return {split: list(files) for split, files in obj.splits}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            items = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
            return {k: convert(v) for k, v in items if v is not None}
        if isinstance(obj, tuple):
            return [convert(v) for v in obj]
        return obj

    return typing.cast(dict[str, Any], convert(spec))
