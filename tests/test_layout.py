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


# --- issue 29: bench is a client; no benchmark-only fields; no env vars as parameters -------

BENCH_MAX_LINES = 3000  # bench/'s code (*.py, *.sh); its data, results and docs aside
# fields that only benchmarks read, once carried in every trial report
BENCH_ONLY_FIELDS = (
    "time_in_eval_s",
    "time_in_save_s",
    "time_in_report_s",
    "step_slot_time_s",
    "start_s",
    "started_at",
    "process_started_at",
    "reported_at",
)
# what a trial report carries besides its eval_* metrics and the study metric's raw value
REPORT_FIELDS = {
    "step", "train_loss", "effective_scale", "lora_alpha", "status", "diverged_reason",
    "adapter_norm_mean", "adapter_norm_max", "adapter_norm_rel_max", "trainable_params",
    "step_time_s", "threads", "gpu_peak_mib", "base_revision", "data_fingerprint",
}  # fmt: skip
# variables lora-hpo both sets and reads, each because another process reads it
CROSS_PROCESS_ENV = {
    "LORA_HPO_PRELOADED": "set by the driver before Ray starts; read by the workers Ray starts",
}


def test_bench_stays_within_its_line_budget() -> None:
    files = [p for p in (REPO / "bench").rglob("*") if p.suffix in (".py", ".sh")]
    lines = sum(len(p.read_text().splitlines()) for p in files)
    assert lines <= BENCH_MAX_LINES, f"bench/ has {lines} lines of code (max {BENCH_MAX_LINES})"


def test_no_module_of_the_product_names_a_benchmark_only_field() -> None:
    found = [
        f"{_name(p)}: {field}"
        for p in (REPO / "lora_hpo").rglob("*.py")
        for field in BENCH_ONLY_FIELDS
        if f'"{field}"' in p.read_text()
    ]
    assert not found, found


@pytest.mark.slow
def test_a_trial_reports_only_its_documented_fields(tiny_assets: Path) -> None:
    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.training.trainer_trial import run_trial
    from tests.conftest import tiny_study

    spec = parse_spec(tiny_study(tiny_assets, **{"training.max_steps": 10}))
    reports: list[dict[str, object]] = []
    run_trial(
        spec, {"r": 4, "alpha_ratio": 1.0, "learning_rate": 3e-3}, lambda m, _: reports.append(m)
    )
    keys = set().union(*(r.keys() for r in reports))
    extra = {k for k in keys if not k.startswith("eval_") and k != f"{spec.metric}_raw"}
    assert extra <= REPORT_FIELDS, extra - REPORT_FIELDS
    assert {"step", "step_time_s"} <= keys


def _env_names(tree: ast.AST, constants: dict[str, str]) -> tuple[set[str], set[str]]:
    """(variables read, variables set) through ``os.environ`` / ``os.getenv`` in one module."""

    def name(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    read: set[str] = set()
    wrote: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target, method, first = node.func.value, node.func.attr, name(node.args[0])
            if first and is_environ(target):
                (read if method == "get" else wrote).add(first)
            if first and method == "getenv":
                read.add(first)
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            key = name(node.slice)
            if key:
                (read if isinstance(node.ctx, ast.Load) else wrote).add(key)
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            key = name(node.left)
            if key:
                read.add(key)
    return read, wrote


def test_no_layer_hands_another_a_parameter_through_the_environment() -> None:
    """A variable lora-hpo sets is never one it reads in the same process: parameters go
    through calls. The exceptions are read by another process, each named with its reader."""
    trees = {p: ast.parse(p.read_text()) for p in (REPO / "lora_hpo").rglob("*.py")}
    constants = {
        t.id: node.value.value
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for t in node.targets
        if isinstance(t, ast.Name) and t.id.isupper()
    }  # fmt: skip
    read: set[str] = set()
    wrote: set[str] = set()
    for tree in trees.values():
        r, w = _env_names(tree, constants)
        read |= r
        wrote |= w
    assert read & wrote <= set(CROSS_PROCESS_ENV), sorted(read & wrote - set(CROSS_PROCESS_ENV))
    assert set(CROSS_PROCESS_ENV) <= read & wrote  # each exception is still needed
