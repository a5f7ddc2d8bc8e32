"""Issue 31: a generated corpus of bad input over every field of the spec.

Each field of the schema (walked from the dataclasses, ``spec_mutants.py``) gets every kind of
bad value its shape allows, put into a valid spec (a shipped preset or a minimal spec). What
``lora-hpo validate`` runs must refuse each with a SpecError, never another exception, whose
message names the file and the dotted field and stays short; a few of them also go through the
real command line, which must exit 2 with no traceback and write nothing."""

from __future__ import annotations

import argparse
import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_hpo.cli.study_commands import validate
from lora_hpo.spec.local_checks import needed_columns
from lora_hpo.spec.spec_errors import LINES_SHOWN, SpecError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC, REPO
from tests.spec.spec_mutants import Edit, Mutation, all_mutations, mutations, spec_fields

MINIMAL: dict[str, Any] = {
    "name": "minimal",
    "task": "causal-lm",
    "model": {"demo": "smollm2-135m"},
    "data": {"demo": "bbc-news-text"},
    "space": {"r": 8, "alpha_ratio": 2, "learning_rate": 1.0e-4},
}
PRESETS = sorted((REPO / "search_spaces").glob("*.yaml"))
BASES: list[dict[str, Any]] = [
    MINIMAL,
    BASE_SPEC,
    *(yaml.safe_load(p.read_text()) for p in PRESETS),
]
MUTATIONS = all_mutations()
MAX_MESSAGE = 2000


def apply(base: dict[str, Any], edit: Edit) -> Any:
    """A copy of ``base`` with ``edit.value`` at ``edit.target`` (missing sections made)."""
    if not edit.target:
        return edit.value
    data = copy.deepcopy(base)
    node = data
    for key in edit.target[:-1]:
        node = node.setdefault(key, {})
    node[edit.target[-1]] = edit.value
    return data


def refusal(data: Any, path: Path) -> str:
    """The message ``validate`` refuses ``data`` with (written to ``path``)."""
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:  # any other exception fails the test
        validate(argparse.Namespace(files=[str(path)]))
    return str(info.value)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus") / "mutant-spec.yaml"


@pytest.mark.parametrize("index", range(len(BASES)))
def test_every_base_spec_is_valid(index: int, spec_file: Path) -> None:
    spec_file.write_text(yaml.safe_dump(BASES[index]))
    assert validate(argparse.Namespace(files=[str(spec_file)])) == 0


def test_the_corpus_covers_every_field_of_the_schema() -> None:
    fields = list(spec_fields())
    assert len(fields) >= 100, len(fields)  # a walk that stopped early covers nothing
    covered = {m.field for m in MUTATIONS}
    assert {f.dotted for f in fields} <= covered
    for f in fields:
        kinds = {m.kind for m in mutations(f)}
        assert kinds - {"null"}, f"{f.dotted}: no bad value but null"
        if f.shape == "section":
            assert {"unknown-key", "not-a-mapping"} <= kinds, f.dotted


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],  # a loaded CI machine; the values are cheap
)
@given(base=st.sampled_from(BASES), data=st.data())
def test_every_bad_value_is_refused_naming_file_and_field(
    mutation: Mutation, base: dict[str, Any], data: st.DataObject, spec_file: Path
) -> None:
    edit = data.draw(mutation.edits, label="edit")
    message = refusal(apply(base, edit), spec_file)
    assert f"{spec_file}: " in message, message[:MAX_MESSAGE]
    assert edit.expect in message, message[:MAX_MESSAGE]
    assert len(message) < MAX_MESSAGE, message[:MAX_MESSAGE]


def test_a_flood_of_problems_is_listed_in_brief(spec_file: Path) -> None:
    """Thousands of bad list items or unknown keys: all counted, a few listed."""
    data = copy.deepcopy(BASE_SPEC)
    data["training"] |= {f"key{i}": i for i in range(300)}
    data["space"]["r"] = {"choices": ["a"] * 3000}
    message = refusal(data, spec_file)
    assert message.startswith("found 3300 problems:"), message[:200]
    assert f"{spec_file}: space.r.choices: ... and 2,997 more in its items" in message
    assert len(message.splitlines()) == LINES_SHOWN + 2 and message.endswith("... and 254 more")


DEMO_BASES = [b for b in BASES if "demo" in b["data"]]


@pytest.mark.parametrize("index", range(len(DEMO_BASES)))
def test_what_a_demo_dataset_lacks_is_refused(index: int, spec_file: Path) -> None:
    """A column it does not hold, or a split but its one split (train)."""
    base = DEMO_BASES[index]
    columns = needed_columns(parse_spec(copy.deepcopy(base)))
    for key in [*columns, "train_split", "eval_split"]:
        data = copy.deepcopy(base)
        data["data"] |= columns | {key: "nosuch"}  # prompt and completion go together
        if key == "eval_split":
            data["data"].pop("eval_fraction", None)  # one or the other
        message = refusal(data, spec_file)
        assert f"{spec_file}: data.{key}: " in message, message
        assert "'nosuch'" in message and "demo dataset" in message, message


CLI_SAMPLES = random.Random(31).sample(MUTATIONS, 4)


@pytest.mark.parametrize("mutation", CLI_SAMPLES, ids=[m.id for m in CLI_SAMPLES])
def test_the_command_line_exits_2_naming_the_field(mutation: Mutation, tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "specs", tmp_path / "cwd"
    folder.mkdir()
    elsewhere.mkdir()
    spec = folder / "bad.yaml"
    spec.write_text(yaml.safe_dump(apply(BASE_SPEC, mutation.sample)))
    proc = subprocess.run(
        [sys.executable, "-m", "lora_hpo.cli", "validate", str(spec)],
        cwd=elsewhere, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{spec}: " in proc.stderr and mutation.sample.expect in proc.stderr, proc.stderr
    assert len(proc.stderr) < MAX_MESSAGE
    assert list(elsewhere.iterdir()) == [] and list(folder.iterdir()) == [spec]
