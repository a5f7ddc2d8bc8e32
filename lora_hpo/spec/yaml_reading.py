"""Reading a search-space file safely: a regular file of at most 1 MiB, UTF-8 text (not
binary), YAML through ``safe_load``, and no alias "bomb" (anchors are fine; a document that
expands past 100,000 values is refused). Every refusal is a Problem naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lora_hpo.spec.spec_parse import Collector

MAX_BYTES = 1 << 20
MAX_VALUES = 100_000  # values in the document with every alias expanded


def read_yaml(path: Path, out: Collector) -> Any:
    """The file's YAML data, or None with the reason added to ``out``."""
    text = _read_text(path, out)
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        out.add("", f"is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")
        return None
    if data is None:
        out.add("", "is empty: a study needs at least name, task, model, data and space")
        return None
    if expanded_size(data, MAX_VALUES) > MAX_VALUES:
        out.add("", f"expands to more than {MAX_VALUES:,} values through YAML aliases")
        return None
    return data


def _read_text(path: Path, out: Collector) -> str | None:
    if path.is_dir():
        out.add("", "is a directory, not a search-space file")
        return None
    try:
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
