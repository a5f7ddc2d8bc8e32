"""Bad values for every field of the study spec, generated from the schema itself.

``spec_fields`` walks the spec's frozen dataclasses (``StudySpec`` and the sections it holds,
with the same annotations and ``doc`` metadata the parser reads), so a field added to the
schema gets a corpus without an edit here. ``mutations`` gives each field the kinds of bad
value its type allows; each is a hypothesis strategy of ``Edit``: where in the YAML data to put
a value, and the dotted path the error must name. Every value drawn is invalid by construction:
a wrong type, a null where the field takes none, a number no field takes (negative, beyond
int64, not finite), a name outside a closed set, a key the schema does not have, or a
search-space parameter of the wrong shape.

The only hand-kept knowledge is what the schema does not say: which string fields are closed
registries (``REGISTRIES``) or have a format (``FORMATS``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from hypothesis import strategies as st

from lora_hpo.spec.registries import DEMO_DATA, DEMO_MODELS, OPTIMIZERS, TARGET_PRESETS
from lora_hpo.spec.spec_checks import ADAPTERS
from lora_hpo.spec.spec_errors import shorten
from lora_hpo.spec.spec_schema import METRIC_MODES, PARAM, StudySpec

LARGEST_INT = 2**63 - 1


@dataclass(frozen=True)
class SpecField:
    """One field of the schema: its place, its type (``None`` taken out) and its metadata."""

    path: tuple[str, ...]
    kind: Any
    optional: bool  # null is a valid value
    meta: Mapping[str, Any]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def shape(self) -> str:
        """What the parser makes of the field: param, files, section, literal, or a scalar."""
        if PARAM in self.meta:
            return "param"
        if self.meta.get("files"):
            return "files"
        if dataclasses.is_dataclass(self.kind):
            return "section"
        if typing.get_origin(self.kind) is Literal:
            return "literal"
        if self.kind in (int, float, bool, str):
            return self.kind.__name__
        raise TypeError(f"{self.dotted}: the corpus knows no field shaped {self.kind!r}")


def _without_none(kind: Any) -> tuple[Any, bool]:
    if typing.get_origin(kind) in (Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), optional  # noqa: UP007
    return kind, False


def spec_fields(cls: Any = StudySpec, prefix: tuple[str, ...] = ()) -> Iterator[SpecField]:
    """Every field of the spec, depth first, sections before the fields they hold."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, optional = _without_none(hints[f.name])
        field = SpecField((*prefix, f.name), kind, optional, f.metadata)
        yield field
        if PARAM not in f.metadata and dataclasses.is_dataclass(kind):
            yield from spec_fields(kind, field.path)


def section_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# --- what the schema does not say -----------------------------------------------------------

# string fields whose value must be one of a closed set of names
REGISTRIES: dict[str, tuple[str, ...]] = {
    "model.demo": tuple(DEMO_MODELS),
    "data.demo": tuple(DEMO_DATA),
    "training.optim": OPTIMIZERS,
    "search.metric": tuple(METRIC_MODES),
    "space.adapter": ADAPTERS,
    "space.target_modules": tuple(TARGET_PRESETS),
}
# string fields with a format, and values that break it
FORMATS: dict[str, list[str]] = {
    "name": ["../up", "a/b", "-lead", "a b", "x" * 129, "n" * 50_000, ".hidden", "a..b"],
    "tracking.tracking_uri": ["http://me:secret@mlflow:5000", "https://m/?token=abc"],
}


# --- edits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Set ``value`` at ``target`` (keys into the YAML data); the error must name ``expect``."""

    target: tuple[str, ...]
    value: Any
    expect: str

    def __repr__(self) -> str:
        return shorten(f"Edit({self.target!r}, {self.value!r}, expect={self.expect!r})", 400)


@dataclass(frozen=True)
class Mutation:
    field: str
    kind: str
    edits: st.SearchStrategy[Edit]
    sample: Edit  # one fixed edit of this kind, for the command-line runs

    @property
    def id(self) -> str:
        return f"{self.field or '(top)'}:{self.kind}"

    def __repr__(self) -> str:  # hypothesis prints it on a failure; the sample can be huge
        return f"Mutation({self.id})"


NAME = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
LONG = st.integers(3_000, 20_000).map(lambda n: "z" * n)
NEGATIVE_INT = st.integers(max_value=-1)
HUGE_INT = st.one_of(st.integers(min_value=LARGEST_INT + 1), st.sampled_from([10**30, 10**400]))
NEGATIVE_FLOAT = st.floats(max_value=-1e-9, allow_infinity=False, allow_nan=False)
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf"), 10**400, -(10**400)])
WRONG_TYPE: dict[str, list[Any]] = {
    "int": ["12", "abc", 1.5, True, [1], {"a": 1}],
    "float": ["abc", "1.0.0", True, [0.5], {"a": 0.5}],
    "bool": ["yes", "true", 1, 0, 1.5, [True], {"a": True}],
    "str": [5, 1.5, True, ["a"], {"a": "b"}],
    "literal": [["x"], {"a": 1}, 12345, True],
}
HUGE_LIST = st.integers(500, 1_500).map(lambda n: list(range(n)))
UNKNOWN_KEY_VALUES = st.sampled_from([1, "x", None, [1], {"a": 1}])


def _values(field: SpecField, kind: str, values: list[Any], *more: Any) -> Mutation:
    """Mutation ``kind`` of ``field``: one of ``values`` (or of the strategies ``more``) at the
    field; the error names the field (or a path below it)."""
    pool = st.one_of(st.sampled_from(values), *more)
    edits = pool.map(lambda v: Edit(field.path, v, field.dotted))
    return Mutation(field.dotted, kind, edits, Edit(field.path, values[0], field.dotted))


def _unknown_keys(field: SpecField, names: list[str]) -> list[Mutation]:
    """A key the section (or the parameter's mapping) does not have: short, or overlong."""
    param = field.shape == "param"

    def edit(key: str, value: Any, expect: str) -> Edit:
        if param:
            return Edit(field.path, {key: value}, expect)
        return Edit((*field.path, key), value, expect)

    def short(key: str, value: Any) -> Edit:
        return edit(key, value, ".".join((*field.path, key)))

    keys = st.one_of(NAME, st.sampled_from(names).map(lambda n: n + "_x"))
    keys = keys.filter(lambda k: k not in names)
    where = f"{field.dotted}." if field.path else "unknown key"
    long_keys = LONG.map(lambda z: "k" + z)
    long = st.builds(lambda k, v: edit(k, v, where), long_keys, UNKNOWN_KEY_VALUES)
    return [
        Mutation(field.dotted, "unknown-key", st.builds(short, keys, UNKNOWN_KEY_VALUES),
                 short("no_such_key", 1)),
        Mutation(field.dotted, "overlong-key", long, edit("k" * 5000, 1, where)),
    ]  # fmt: skip


def _names(field: SpecField, allowed: tuple[Any, ...]) -> list[Mutation]:
    """A name outside a closed set: made up, a near miss of a real one, or overlong."""
    strs = [a for a in allowed if isinstance(a, str)]
    made_up = NAME.filter(lambda n: n not in allowed)
    if not strs:  # an int Literal (quantization.bits)
        other = st.integers().filter(lambda n: n not in allowed)
        return [_values(field, "unknown-name", [3, 5, 16], other)]
    near = st.sampled_from(strs).map(lambda a: a + "x")
    return [
        _values(field, "unknown-name", ["no-such-name", strs[0] + "x"], made_up, near),
        _values(field, "overlong", ["z" * 5000], LONG),
    ]


def _numbers(field: SpecField) -> list[Mutation]:
    """Out of range: no number in the spec is negative, beyond int64 or not finite."""
    most, least = field.meta.get("most"), field.meta.get("least")
    bounds = [most + 1] if most is not None else []
    bounds += [least - 1] if least is not None else []
    if field.shape == "int":
        values = [-1, 10**30, 10**400, *bounds]
        return [_values(field, "out-of-range", values, NEGATIVE_INT, HUGE_INT)]
    values = [-1.0, float("nan"), 10**400, *bounds]
    return [_values(field, "out-of-range", values, NEGATIVE_FLOAT, NOT_FINITE)]


def _scalar(field: SpecField) -> list[Mutation]:
    shape = field.shape
    huge = [HUGE_LIST] if shape in ("str", "literal") else [HUGE_LIST, LONG]
    out = [_values(field, "wrong-type", WRONG_TYPE[shape], *huge)]
    if shape in ("int", "float"):
        out += _numbers(field)
    if shape == "str":
        out.append(_values(field, "empty-string", [""]))
    if shape == "literal":
        out += _names(field, typing.get_args(field.kind))
    if field.dotted in REGISTRIES:
        out += _names(field, REGISTRIES[field.dotted])
    if field.dotted in FORMATS:
        out.append(_values(field, "bad-format", FORMATS[field.dotted]))
    return out


def _low_above_high(element: Any) -> st.SearchStrategy[dict[str, Any]]:
    """``{low, high}`` with low > high, both inside what the parameter takes."""
    if element is int:
        pair = st.lists(st.integers(1, 64), min_size=2, max_size=2, unique=True)
    else:
        value = st.floats(0.01, 0.9, allow_nan=False)
        pair = st.lists(value, min_size=2, max_size=2, unique=True)
    return pair.map(lambda ab: {"low": max(ab), "high": min(ab)})


def _numeric_param(field: SpecField, element: Any) -> list[Mutation]:
    one, two = (1, 2) if element is int else (0.1, 0.2)
    negative = NEGATIVE_INT if element is int else NEGATIVE_FLOAT
    too_big = HUGE_INT if element is int else NOT_FINITE
    return [
        _values(field, "wrong-type", ["abc", True, [one, two], {"low": "abc", "high": two}],
                HUGE_LIST, LONG),
        _values(field, "out-of-range", [-1, 10**30, 10**400, float("nan"), {"choices": [-1, two]},
                                        {"low": -1, "high": two}], negative, too_big),
        _values(field, "bad-range", [{"low": two, "high": one}, {"low": one}, {},
                                     {"low": one, "high": two, "log": "yes"},
                                     {"low": one, "high": two, "step": 0},
                                     {"low": one, "high": two, "step": -one},
                                     {"low": one, "high": two, "log": True, "step": one}],
                _low_above_high(element)),
        _values(field, "bad-choices", [{"choices": []}, {"choices": one}, {"choices": ["a", "b"]},
                                       {"choices": [one, one]}, {"choices": [one, two], "low": one},
                                       {"choices": [[one]]}, {"choices": [True, False]},
                                       {"choices": None}],
                HUGE_LIST.map(lambda n: {"choices": [str(i) for i in n]})),
    ]  # fmt: skip


def _other_param(field: SpecField, element: Any) -> list[Mutation]:
    """A boolean, a name (``adapter``) or target modules: never a range."""
    valid = {bool: True, str: "lora", "modules": "attention"}[element]
    wrong = {bool: ["yes", 1, 0.5, [True]], str: [5, "", [1], 1.5],
             "modules": ["", [], [5], [""], 5, True, [["q"]]]}[element]  # fmt: skip
    out = [
        _values(field, "wrong-type", wrong, HUGE_LIST.map(lambda n: {"choices": n})),
        _values(field, "bad-range", [{"low": 0, "high": 1}, {"low": 1}]),
        _values(field, "bad-choices", [{"choices": []}, {"choices": [valid, valid]},
                                       {"choices": [[]]}, {"choices": 5}, {"choices": [1.5]},
                                       {"choices": [valid], "low": 0}]),
    ]  # fmt: skip
    if field.dotted in REGISTRIES:
        out += _names(field, REGISTRIES[field.dotted])
    return out


def _param(field: SpecField) -> list[Mutation]:
    element = field.meta[PARAM]
    if element in (int, float):
        out = _numeric_param(field, element)
    else:
        out = _other_param(field, element)
    return out + _unknown_keys(field, ["low", "high", "log", "step", "choices"])


FILES_SHAPES: list[Any] = [5, "", True, [], [5], [""], [["a.jsonl"]], {}, {"train": []},
                           {"train": [5]}, {"": ["a.jsonl"]}, {"train": {"a": 1}}]  # fmt: skip
NOT_A_MAPPING: list[Any] = [5, "text", [1, 2], True, 1.5]


def mutations(field: SpecField) -> list[Mutation]:
    """Every kind of bad value the field's shape allows."""
    shape = field.shape
    out = [] if field.optional else [_values(field, "null", [None])]
    if shape == "section":
        out.append(_values(field, "not-a-mapping", NOT_A_MAPPING))
        out += _unknown_keys(field, section_names(field.kind))
    elif shape == "param":
        out += _param(field)
    elif shape == "files":
        out.append(_values(field, "wrong-type", FILES_SHAPES, HUGE_LIST))
    else:
        out += _scalar(field)
    return out


ROOT = SpecField((), StudySpec, optional=False, meta={})


def all_mutations() -> list[Mutation]:
    """The top level's bad shapes, then every field's."""
    top = Mutation("", "not-a-mapping", st.sampled_from([[1, 2], "text", 5]).map(
        lambda v: Edit((), v, "(top level)")), Edit((), [1, 2], "(top level)"))  # fmt: skip
    return [top, *_unknown_keys(ROOT, section_names(StudySpec)),
            *(m for f in spec_fields() for m in mutations(f))]  # fmt: skip
