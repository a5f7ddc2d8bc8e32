"""The house rules that keep the code readable: no module over 300 lines, no function over 40
(ruff's C901 and PLR0915 catch complexity; this counts lines), and tests that mirror the
package tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40
CODE = sorted([*(REPO / "lora_hpo").rglob("*.py"), *(REPO / "bench").rglob("*.py")])


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", CODE, ids=_name)
def test_module_and_function_sizes(path: Path) -> None:
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines (max {MAX_MODULE_LINES})"
    long = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = (node.end_lineno or node.lineno) - first + 1
            if size > MAX_FUNCTION_LINES:
                long.append(f"{node.name} (line {node.lineno}): {size} lines")
    assert not long, f"{_name(path)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_tests_mirror_the_package() -> None:
    """Every subpackage of lora_hpo has a folder of tests of the same name."""
    packages = [p.name for p in (REPO / "lora_hpo").iterdir() if (p / "__init__.py").is_file()]
    missing = [p for p in packages if not (REPO / "tests" / p / "__init__.py").is_file()]
    assert not missing, f"no tests/<name>/ for the subpackages {missing}"
