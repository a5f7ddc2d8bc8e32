"""YAML -> StudySpec: safe_load, ``--set`` overrides, unknown keys rejected, every problem
collected. Cross-field rules live in ``checks.py``. No torch, ray or optuna import here."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from lora_hpo.checks import check_sections
from lora_hpo.errors import Problem, SpecError
from lora_hpo.spec import PARAM, Choices, Fixed, Range, StudySpec

_MISSING = object()


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.file))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, default=str)


# --- scalars ---------------------------------------------------------------------------------


def _scalar(value: Any, kind: Any, path: str, out: _Collector) -> Any:
    """Coerce one YAML scalar to ``kind`` (int, float, bool, str, Literal), or record why not."""
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            hint = _did_you_mean(str(value), [str(a) for a in allowed])
            out.add(path, f"must be one of {list(allowed)}, but got {_show(value)}{hint}")
            return _MISSING
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
    elif kind is str:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, str):
            out.add(path, "must be a non-empty string, but got ''")
            return _MISSING
    out.add(path, f"must be {_type_name(kind)}, but got {_show(value)} ({type(value).__name__})")
    return _MISSING


def _type_name(kind: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        kind, str(kind)
    )


def _did_you_mean(given: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- search-space parameters -----------------------------------------------------------------

_PARAM_KEYS = {"low", "high", "log", "step", "choices"}


def _param(value: Any, kind: Any, path: str, out: _Collector) -> Any:
    """A fixed value, ``{low, high, log?, step?}`` or ``{choices: [...]}``."""
    if isinstance(value, dict):
        _unknown_keys(value, sorted(_PARAM_KEYS), path, out)
        if "choices" in value:
            if set(value) - {"choices"}:
                out.add(path, "give either choices or low/high, not both")
                return _MISSING
            return _choices(value["choices"], kind, _join(path, "choices"), out)
        return _range(value, kind, path, out)
    if kind == "modules" and isinstance(value, list):
        return _modules(value, path, out)
    fixed = _element(value, kind, path, out)
    return _MISSING if fixed is _MISSING else Fixed(fixed)


def _element(value: Any, kind: Any, path: str, out: _Collector) -> Any:
    if kind == "modules":
        return _modules(value, path, out)
    return _scalar(value, kind, path, out)


def _modules(value: Any, path: str, out: _Collector) -> Any:
    """A preset name (str) or an explicit list of module names (tuple of str)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list):
        if not value:
            out.add(path, "an explicit module list must not be empty, but got []")
            return _MISSING
        if all(isinstance(v, str) and v for v in value):
            return tuple(value)
    out.add(path, f"must be a preset name or a list of module names, but got {_show(value)}")
    return _MISSING


def _choices(values: Any, kind: Any, path: str, out: _Collector) -> Any:
    if not isinstance(values, list):
        out.add(path, f"must be a list, but got {_show(values)}")
        return _MISSING
    if not values:
        out.add(path, "must hold at least one value, but got []")
        return _MISSING
    items = [_element(v, kind, f"{path}[{i}]", out) for i, v in enumerate(values)]
    if any(item is _MISSING for item in items):
        return _MISSING
    raw_types = {type(v).__name__ for v in values}
    if kind in (float, int) and len(raw_types) > 1 and raw_types != {"int", "float"}:
        out.add(path, f"choices must all be of one type, but got types {sorted(raw_types)}")
        return _MISSING
    if len(set(map(str, items))) != len(items):
        out.add(path, f"choices must be distinct, but got {_show(values)}")
        return _MISSING
    return Choices(tuple(items))


def _range(value: dict[str, Any], kind: Any, path: str, out: _Collector) -> Any:
    if kind not in (int, float):
        out.add(path, f"cannot be a range (low/high); give a value or choices, got {_show(value)}")
        return _MISSING
    missing = [k for k in ("low", "high") if k not in value]
    for key in missing:
        out.add(_join(path, key), "is required for a range")
    if missing:
        return _MISSING
    low = _scalar(value["low"], kind, _join(path, "low"), out)
    high = _scalar(value["high"], kind, _join(path, "high"), out)
    log = _scalar(value.get("log", False), bool, _join(path, "log"), out)
    step = value.get("step")
    if step is not None:
        step = _scalar(step, kind, _join(path, "step"), out)
    if _MISSING in (low, high, log, step):
        return _MISSING
    return Range(low=low, high=high, log=log, step=step)


# --- dataclasses -----------------------------------------------------------------------------


def _unknown_keys(data: dict[str, Any], allowed: list[str], path: str, out: _Collector) -> None:
    for key in data:
        if key not in allowed:
            hint = _did_you_mean(str(key), allowed)
            out.add(_join(path, str(key)), f"unknown key{hint}; allowed keys: {', '.join(allowed)}")


def _optional_inner(kind: Any) -> tuple[Any, bool]:
    """(inner type, is_optional) for ``X | None``."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        args = typing.get_args(kind)
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else kind), len(rest) < len(args)
    return kind, False


def _value(value: Any, kind: Any, meta: Any, path: str, out: _Collector) -> Any:
    inner, optional = _optional_inner(kind)
    if value is None:
        if optional:
            return None
        out.add(path, "must be given a value, but got null")
        return _MISSING
    if PARAM in meta:
        return _param(value, meta[PARAM], path, out)
    if dataclasses.is_dataclass(inner):
        return _section(value, inner, path, out)
    if typing.get_origin(inner) is tuple:
        if not isinstance(value, list) or not value:
            out.add(path, f"must be a non-empty list, but got {_show(value)}")
            return _MISSING
        items = [_scalar(v, str, f"{path}[{i}]", out) for i, v in enumerate(value)]
        return _MISSING if _MISSING in items else tuple(items)
    return _scalar(value, inner, path, out)


def _section(data: Any, cls: Any, path: str, out: _Collector) -> Any:
    kwargs = _fields(data, cls, path, out)
    if kwargs is None:
        return _MISSING
    try:
        return cls(**kwargs)
    except TypeError:  # a required field was missing or invalid; already recorded
        return _MISSING


def _fields(data: Any, cls: Any, path: str, out: _Collector) -> dict[str, Any] | None:
    """Each field of ``cls`` parsed from ``data``; failed and absent fields are left out."""
    if not isinstance(data, dict):
        out.add(path or "(top level)", f"must be a mapping, but got {_show(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _unknown_keys(data, list(fields), path, out)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in data:
            if required:
                out.add(_join(path, name), f"is required ({f.metadata.get('help', name)})")
            continue
        value = _value(data[name], hints[name], f.metadata, _join(path, name), out)
        if value is not _MISSING:
            kwargs[name] = value
    return kwargs


# --- files -----------------------------------------------------------------------------------


def apply_overrides(data: dict[str, Any], overrides: list[str], out: _Collector) -> None:
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
            node[parts[-1]] = yaml.safe_load(raw)


def read_yaml(path: Path, out: _Collector) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        out.add("", "file does not exist")
        return None
    except OSError as exc:
        out.add("", f"cannot be read: {exc.strerror}")
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        out.add("", f"is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")
        return None


def parse_spec(data: Any, file: str = "", overrides: list[str] | None = None) -> StudySpec:
    """Build and check a spec from already-parsed YAML; raise SpecError listing every problem."""
    out = _Collector(file)
    if isinstance(data, dict) and overrides:
        apply_overrides(data, overrides, out)
    sections = _fields(data, StudySpec, "", out)
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
    return StudySpec(**sections)


def load_spec(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Load one search-space file; raise SpecError naming the file and every problem in it."""
    path = Path(path)
    out = _Collector(str(path))
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
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            items = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
            return {k: convert(v) for k, v in items if v is not None}
        if isinstance(obj, tuple):
            return [convert(v) for v in obj]
        return obj

    return typing.cast(dict[str, Any], convert(spec))
