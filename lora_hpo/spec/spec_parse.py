"""Plain YAML data -> the spec's frozen dataclasses, typed by their annotations: scalars
coerced, search-space parameters recognised, unknown keys rejected with a "did you mean",
and every problem collected (never the first one only)."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from typing import Any, Literal, Union

from lora_hpo.spec.space_params import Choices, Fixed, Range, SplitFiles
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import PARAM

_MISSING = object()


class Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.file))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, default=str)


# --- scalars ---------------------------------------------------------------------------------


def _as_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else _MISSING


def _as_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _MISSING


def _as_float(value: Any) -> Any:
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            return _MISSING
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float, e.g. 10**400
            return _MISSING
        return number if math.isfinite(number) else _MISSING
    return _MISSING


def _as_str(value: Any) -> Any:
    return value if isinstance(value, str) and value else _MISSING


_COERCE = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str}


def _scalar(value: Any, kind: Any, path: str, out: Collector) -> Any:
    """Coerce one YAML scalar to ``kind`` (int, float, bool, str, Literal), or record why not."""
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            hint = _did_you_mean(str(value), [str(a) for a in allowed])
            out.add(path, f"must be one of {list(allowed)}, but got {show(value)}{hint}")
            return _MISSING
        return value
    got = _COERCE[kind](value) if kind in _COERCE else _MISSING
    if got is not _MISSING:
        return got
    if kind is str and value == "":
        out.add(path, "must be a non-empty string, but got ''")
    else:
        out.add(path, f"must be {_type_name(kind)}, but got {show(value)} ({type(value).__name__})")
    return _MISSING


def _type_name(kind: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a finite number", str: "a string"}.get(
        kind, str(kind)
    )


def _did_you_mean(given: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- search-space parameters -----------------------------------------------------------------

_PARAM_KEYS = {"low", "high", "log", "step", "choices"}


def _param(value: Any, kind: Any, path: str, out: Collector) -> Any:
    """A fixed value, ``{low, high, log?, step?}`` or ``{choices: [...]}``."""
    if isinstance(value, dict):
        _unknown_keys(value, sorted(_PARAM_KEYS), path, out)
        if "choices" in value:
            if set(value) - {"choices"}:
                out.add(path, "give either choices or low/high, not both")
                return _MISSING
            return _choices(value["choices"], kind, _join(path, "choices"), out)
        return _range(value, kind, path, out)
    fixed = _element(value, kind, path, out)  # a module list is one fixed value
    return _MISSING if fixed is _MISSING else Fixed(fixed)


def _element(value: Any, kind: Any, path: str, out: Collector) -> Any:
    if kind == "modules":
        return _modules(value, path, out)
    return _scalar(value, kind, path, out)


def _modules(value: Any, path: str, out: Collector) -> Any:
    """A preset name (str) or an explicit list of module names (tuple of str)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list):
        if not value:
            out.add(path, "an explicit module list must not be empty, but got []")
            return _MISSING
        if all(isinstance(v, str) and v for v in value):
            return tuple(value)
    out.add(path, f"must be a preset name or a list of module names, but got {show(value)}")
    return _MISSING


def _choices(values: Any, kind: Any, path: str, out: Collector) -> Any:
    if not isinstance(values, list):
        out.add(path, f"must be a list, but got {show(values)}")
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
        out.add(path, f"choices must be distinct, but got {show(values)}")
        return _MISSING
    return Choices(tuple(items))


def _range(value: dict[str, Any], kind: Any, path: str, out: Collector) -> Any:
    if kind not in (int, float):
        out.add(path, f"cannot be a range (low/high); give a value or choices, got {show(value)}")
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


def _unknown_keys(data: dict[str, Any], allowed: list[str], path: str, out: Collector) -> None:
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


def _value(value: Any, kind: Any, meta: Any, path: str, out: Collector) -> Any:
    inner, optional = _optional_inner(kind)
    if value is None:
        if optional:
            return None
        out.add(path, "must be given a value, but got null")
        return _MISSING
    if PARAM in meta:
        return _param(value, meta[PARAM], path, out)
    if meta.get("files"):
        return _files(value, path, out)
    if dataclasses.is_dataclass(inner):
        return _section(value, inner, path, out)
    if typing.get_origin(inner) is tuple:
        return _strings(value, path, out)
    return _bounded(_scalar(value, inner, path, out), meta, path, out)


LARGEST_INT = 2**63 - 1  # beyond this no library below takes the number


def _bounded(value: Any, meta: Any, path: str, out: Collector) -> Any:
    """A number inside the field's ``least`` / ``most`` (and any int inside int64)."""
    if value is _MISSING or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    least, most = (
        meta.get("least"),
        meta.get("most", LARGEST_INT if isinstance(value, int) else None),
    )
    if (least is not None and value < least) or (most is not None and value > most):
        low = f"{least}" if least is not None else "-inf"
        out.add(path, f"must be between {low} and {most}, but got {value}")
        return _MISSING
    return value


def _strings(value: Any, path: str, out: Collector) -> Any:
    if not isinstance(value, list) or not value:
        out.add(path, f"must be a non-empty list, but got {show(value)}")
        return _MISSING
    items = [_scalar(v, str, f"{path}[{i}]", out) for i, v in enumerate(value)]
    return _MISSING if _MISSING in items else tuple(items)


def _files(value: Any, path: str, out: Collector) -> Any:
    """A list of files (the train split), or a mapping from split name to a file or files."""
    if not isinstance(value, dict):
        return _strings(value, path, out)
    if not value:
        out.add(path, "a split mapping must name at least one split, but got {}")
        return _MISSING
    pairs = []
    for split, files in value.items():
        where = _join(path, str(split))
        got = _strings([files] if isinstance(files, str) else files, where, out)
        if isinstance(split, str) and split and got is not _MISSING:
            pairs.append((split, got))
        elif not isinstance(split, str) or not split:
            out.add(where, f"a split name must be a non-empty string, but got {show(split)}")
    return SplitFiles(tuple(pairs)) if len(pairs) == len(value) else _MISSING


def _section(data: Any, cls: Any, path: str, out: Collector) -> Any:
    kwargs = section_fields(data, cls, path, out)
    if kwargs is None:
        return _MISSING
    try:
        return cls(**kwargs)
    except TypeError:  # a required field was missing or invalid; already recorded
        return _MISSING


def section_fields(data: Any, cls: Any, path: str, out: Collector) -> dict[str, Any] | None:
    """Each field of ``cls`` parsed from ``data``; failed and absent fields are left out."""
    if not isinstance(data, dict):
        out.add(path or "(top level)", f"must be a mapping, but got {show(data)}")
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
