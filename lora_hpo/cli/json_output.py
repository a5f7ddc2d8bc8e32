"""``--json`` and ``--version``: one JSON document on stdout, the human lines on stderr.

Keys are snake_case, as ``lora-hpo best --json``'s. A command given ``--json`` prints one
document also on bad input (exit 2): ``{"error": ..., "problems": [{"file", "field",
"message"}]}`` (``validate``'s own document adds ``"valid": false``), while stderr keeps the
human message. ``run`` that finds no best trial (exit 1) still prints its summary; a study
interrupted (130, 143) prints none, and says how to resume on stderr. Non-finite numbers
become ``null``, so ``jq`` reads every document. Imports nothing heavy.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from lora_hpo.spec.spec_errors import Problem, SpecError

VERSIONED = ("ray", "optuna", "peft", "transformers", "torch", "mlflow")


def clean(value: Any) -> Any:
    """``value`` as plain JSON: NaN and infinities as None, tuples as lists, paths as text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # a numpy scalar
        return clean(value.item())
    return str(value)


def emit(document: Any) -> None:
    """Print ``document`` to stdout as one JSON document."""
    print(json.dumps(clean(document), indent=2, allow_nan=False), flush=True)


def problem_docs(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"file": p.file, "field": p.path, "message": p.message} for p in problems]


def error_doc(exc: Exception) -> dict[str, Any]:
    """A failed command's document: the message, and each problem of a spec."""
    problems = exc.problems if isinstance(exc, SpecError) else []
    return {"error": str(exc), "problems": problem_docs(problems)}


def add_json_flag(p: argparse.ArgumentParser, what: str, note: str = "") -> None:
    text = f"print {what} as one JSON document on stdout{note}"
    p.add_argument("--json", action="store_true", help=text)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While the block runs, what goes to stdout goes to stderr instead: this process's prints,
    Ray's forwarded worker logs and what child processes write to fd 1; so that stdout holds
    only the JSON document printed after the block."""
    sys.stdout.flush()
    fd = _fileno(sys.stdout)
    err = _fileno(sys.stderr)
    saved = os.dup(fd) if fd >= 0 and err >= 0 else -1
    if saved >= 0:
        os.dup2(err, fd)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)


def _fileno(stream: Any) -> int:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return -1  # a capture (pytest's capsys) or a closed stream: no descriptor to move


def version_text() -> str:
    """``lora-hpo <version>``, then the installed versions of the libraries it drives, read
    from their metadata (none is imported)."""
    from importlib import metadata

    from lora_hpo import __version__

    lines = [f"lora-hpo {__version__}"]
    for name in VERSIONED:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """As argparse's ``action="version"``, with the text built only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the versions of lora-hpo and its libraries, and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_text(), flush=True)  # to stdout, as argparse's own
        parser.exit()
