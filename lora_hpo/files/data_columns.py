"""The columns of a local data file, read cheaply (standard library and pyarrow): JSON lines
(every line parsed up to a size limit, so a malformed line is found with its number), a JSON
array, CSV (the header; a field may be as large as the file) and parquet (the schema). And the
kinds of value a JSON file's label column holds, so mixed labels are found before a run; and
whether each row of a chat column is a conversation to train on (``message_problem``)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TableError(Exception):
    """The file cannot be used: missing, unreadable, empty or malformed (the message says)."""


def read_columns(path: Path, fmt: str, scan_bytes: int) -> set[str]:
    """The file's column names; TableError says why it cannot be used."""
    if not path.is_file():
        raise TableError("does not exist" if not path.exists() else "is not a file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise TableError("is empty")
        if fmt == "parquet":
            return _parquet(path)
        return _csv(path) if fmt == "csv" else _json(path, size, scan_bytes)
    except UnicodeDecodeError as exc:
        raise TableError(f"is not UTF-8 text (byte offset {exc.start})") from None
    except csv.Error as exc:
        raise TableError(f"is not valid CSV: {exc}") from None
    except OSError as exc:
        raise TableError(f"cannot be read: {exc.strerror or exc}") from None


def _parquet(path: Path) -> set[str]:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for a non-parquet file
        raise TableError(f"is not a parquet file ({exc})") from None
    if meta.num_rows == 0:
        raise TableError("has no rows")
    return set(meta.schema.to_arrow_schema().names)


def _csv(path: Path) -> set[str]:
    # a field may hold a whole document: valid CSV, so no limit below the file's own size
    csv.field_size_limit(max(csv.field_size_limit(), min(path.stat().st_size + 1, sys.maxsize)))
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise TableError("has no header row")
        if next(reader, None) is None:
            raise TableError("has a header but no rows")
    return set(header)


def _json(path: Path, size: int, scan_bytes: int) -> set[str]:
    """JSON lines (each line an object), or one JSON array of objects."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        return _json_array(path.read_text(encoding="utf-8") if size <= scan_bytes else "")
    columns: set[str] = set()
    rows = 0
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TableError(f"line {number} is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise TableError(f"line {number} nests too deeply to be a data row") from None
            if not isinstance(row, dict):
                raise TableError(f"line {number} is not a JSON object but {type(row).__name__}")
            columns |= set(row)
            rows += 1
            if rows >= 20 and size > scan_bytes:
                break
    if not rows:
        raise TableError("holds no JSON rows")
    return columns


def _json_array(text: str) -> set[str]:
    if not text:
        return set()  # too large to parse here: the preflight loads it
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TableError(f"is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    except RecursionError:
        raise TableError("nests too deeply to be a table of rows") from None
    if not rows:
        raise TableError("holds an empty JSON array")
    return {key for row in rows if isinstance(row, dict) for key in row}


def _json_rows(path: Path, scan_bytes: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for the rows of a JSON lines file ("line 3") or JSON array ("row 3") that
    parse as objects, up to ``scan_bytes`` of it: what ``read_columns`` has found well formed."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        if path.stat().st_size <= scan_bytes:
            rows = json.loads(path.read_text(encoding="utf-8"))
            yield from ((f"row {i}", r) for i, r in enumerate(rows, 1) if isinstance(r, dict))
        return
    read = 0
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            read += len(line)
            if read > scan_bytes:
                return
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict):
                    yield f"line {number}", row


def label_kinds(path: Path, column: str, scan_bytes: int) -> dict[str, Any]:
    """The kinds of value a JSON file's ``column`` holds (str, int, or what else), each with a
    first example; a whole-number float counts as an int, a missing value as "missing"."""
    kinds: dict[str, Any] = {}
    for _, row in _json_rows(path, scan_bytes):
        value = row.get(column)
        if value is None:
            kind = "missing"
        elif isinstance(value, float) and value.is_integer():
            kind = "int"
        else:
            kind = type(value).__name__
        kinds.setdefault(kind, value)
    return kinds


ROLES = ("system", "user", "assistant")  # the roles a chat row's messages may take


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def message_problem(value: Any) -> str | None:
    """Why one row's messages are not a conversation to train on, or None: a non-empty list of
    {role, content} (content a string, role one of ROLES), with an assistant message, the
    first of which follows a user message."""
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of {{role, content}} messages, but got {_short(value)}"
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not all(
            isinstance(message.get(k), str) for k in ("role", "content")
        ):
            shown = _short(message)
            return f"message {i} must be {{role: string, content: string}}, but got {shown}"
        if message["role"] not in ROLES:
            return f"message {i}: role must be one of {list(ROLES)}, but got {message['role']!r}"
    roles = [m["role"] for m in value]
    if "assistant" not in roles:
        return f"holds no assistant message (roles {roles}), so there is nothing to learn"
    if "user" not in roles[: roles.index("assistant")]:
        return f"the first assistant message must follow a user message, but the roles are {roles}"
    return None


def chat_problems(path: Path, fmt: str, column: str, scan_bytes: int) -> Iterator[str]:
    """Each row of a local JSON or parquet file whose ``column`` is not a conversation, as
    "line 3: why" (parquet: "row 3: why"); a CSV file cannot hold one."""
    if fmt == "csv":
        yield "a CSV file cannot hold a list of messages; use JSON lines or parquet"
        return
    if fmt == "parquet":
        if path.stat().st_size > scan_bytes:
            return
        import pyarrow.parquet as pq

        values = pq.read_table(path, columns=[column]).column(column).to_pylist()
        rows: Iterator[tuple[str, dict[str, Any]]] = (
            (f"row {i}", {column: v}) for i, v in enumerate(values, 1)
        )
    else:
        rows = _json_rows(path, scan_bytes)
    for where, row in rows:
        problem = message_problem(row.get(column))
        if problem is not None:
            yield f"{where}: {problem}"
