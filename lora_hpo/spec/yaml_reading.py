"""Reading a search-space file safely: a regular file (not a FIFO or a device, which would
hang or never end) of at most 1 MiB, UTF-8 text (not binary), YAML through a safe loader
that refuses a key given twice in one mapping, nesting at most 32 deep, and no alias "bomb"
(anchors are fine; a document that expands past 100,000 values is refused). ``--set`` values
go through the same YAML rules. Every refusal is a Problem naming the file (or the field)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from lora_hpo.spec.spec_parse import Collector

MAX_BYTES = 1 << 20
MAX_VALUES = 100_000  # values in the document with every alias expanded
MAX_DEPTH = 32  # nested mappings and lists; a spec needs 4


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML 1.2 forbids it;
    PyYAML would keep the last silently, turning a searched range into a fixed value)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first at line {first})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``text`` as YAML data, by the rules above; raises ``yaml.YAMLError`` or ``ValueError``
    (too deep, too large) with the reason."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except RecursionError:
        raise ValueError(f"nests deeper than {MAX_DEPTH} levels") from None
    if expanded_size(data, MAX_VALUES) > MAX_VALUES:  # first: it bounds the walk below
        raise ValueError(f"expands to more than {MAX_VALUES:,} values through YAML aliases")
    if depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise ValueError(f"nests deeper than {MAX_DEPTH} levels")
    return data


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"


def read_yaml(path: Path, out: Collector) -> Any:
    """The file's YAML data, or None with the reason added to ``out``."""
    text = _read_text(path, out)
    if text is None:
        return None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        out.add("", yaml_problem(exc))
        return None
    except ValueError as exc:
        out.add("", str(exc))
        return None
    if data is None:
        out.add("", "is empty: a study needs at least name, task, model, data and space")
        return None
    return data


def _read_text(path: Path, out: Collector) -> str | None:
    if path.is_dir():
        out.add("", "is a directory, not a search-space file")
        return None
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            out.add("", f"is {_kind(mode)}, not a regular search-space file")
            return None
        size = path.stat().st_size
        if size > MAX_BYTES:
            out.add("", f"is {size:,} bytes; a search-space file is at most {MAX_BYTES:,}")
            return None
        raw = path.read_bytes()
    except FileNotFoundError:
        out.add("", "file does not exist")
        return None
    except OSError as exc:
        out.add("", f"cannot be read: {exc.strerror or exc}")
        return None
    if b"\0" in raw:
        out.add("", "is a binary file (it holds NUL bytes), not YAML text")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        out.add("", f"is not UTF-8 text: byte 0x{byte:02x} at offset {exc.start}")
        return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (a named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def depth(data: Any, budget: int) -> int:
    """How deep ``data`` nests (a scalar: 0), counting up to ``budget + 1``."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            level += 1
            deepest = max(deepest, level)
            if level > budget:
                return level
            children = list(node.values()) if isinstance(node, dict) else node
            stack.extend((child, level) for child in children)
    return deepest


def expanded_size(data: Any, budget: int) -> int:
    """How many values ``data`` holds with aliases expanded, counting up to ``budget + 1``."""
    count, stack = 0, [data]
    while stack and count <= budget:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count
