"""The study entry point knows every strategy a spec can name, and nothing else does."""

from __future__ import annotations

import typing

from lora_hpo.search.study_runner import STRATEGIES
from lora_hpo.spec.spec_schema import SearchSpec
from tests.conftest import REPO


def test_every_strategy_a_spec_can_name_has_a_runner() -> None:
    names = typing.get_args(typing.get_type_hints(SearchSpec)["strategy"])
    assert set(names) == set(STRATEGIES)


def test_only_the_entry_point_dispatches_on_the_strategy() -> None:
    """'single or staged' is decided in search/study.py alone (spec/ checks the staged
    section's own fields, which is validation, not dispatch)."""
    hits = []
    for path in (REPO / "lora_hpo").rglob("*.py"):
        if path.parent.name == "spec":
            continue
        text = path.read_text()
        if "search.strategy ==" in text or 'strategy == "staged"' in text:
            hits.append(str(path.relative_to(REPO)))
    assert hits == [], hits
