"""What a search-space file (and a ``--set`` value) may be: a regular file, YAML with no key
given twice, nesting at most 32 deep, no alias bomb. Each refusal is an exit 2 that names the
file and says why, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "search_spaces" / "quickstart.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process; a hang fails the test instead of blocking it."""
    return subprocess.run(
        [sys.executable, "-m", "lora_hpo.cli", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    _refused(_cli("validate", str(fifo)), str(fifo), "FIFO")


def test_a_character_device_is_refused() -> None:
    _refused(_cli("validate", "/dev/zero"), "/dev/zero", "a device")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    spec = tmp_path / "dup.yaml"
    text = QUICKSTART.read_text().replace(
        "  learning_rate:", "  learning_rate: 1.0e-3\n  learning_rate:", 1
    )
    spec.write_text(text)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("  learning_rate:"))
    _refused(_cli("validate", str(spec)), str(spec), "'learning_rate' is given twice",
             f"first at line {first}")  # fmt: skip


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "deep.yaml"
    spec.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    _refused(_cli("validate", str(spec)), str(spec), "nests deeper than 32 levels")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[" * 40 + "1" + "]" * 40, ["search.num_samples", "nests deeper than 32 levels"]),
        ("&b [*b]", ["search.num_samples", "100,000 values"]),  # a recursive alias
        ("{a: 1, a: 2}", ["search.num_samples", "'a' is given twice"]),
    ],
    ids=["deep", "recursive-alias", "duplicate-key"],
)
def test_set_values_follow_the_same_rules(value: str, words: list[str]) -> None:
    proc = _cli("show-space", str(QUICKSTART), "--set", f"search.num_samples={value}")
    _refused(proc, *words)
    assert len(proc.stderr) < 2000  # a huge value is not echoed back whole


def test_a_nine_level_alias_bomb_in_set_is_refused_quickly() -> None:
    bomb = "{" + ", ".join(
        ["a: &a ['x','x','x','x','x','x','x','x','x']"]
        + [f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]"
           for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    ) + "}"  # fmt: skip
    proc = _cli("show-space", str(QUICKSTART), "--set", f"space.r={bomb}")
    _refused(proc, "space.r", "100,000 values")
    assert len(proc.stderr) < 2000
