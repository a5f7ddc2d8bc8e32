"""Every shipped search-space file validates, and the presets keep the seed's rank bands."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_hpo.spec.guardrails import guardrail_warnings
from lora_hpo.spec.registries import RANK_BANDS
from lora_hpo.spec.space_params import bounds
from lora_hpo.spec.spec_loader import load_spec
from tests.conftest import REPO

FILES = sorted((REPO / "search_spaces").glob("*.yaml"))


def test_the_folder_holds_the_presets() -> None:
    names = {f.stem for f in FILES}
    assert {"quickstart", *RANK_BANDS} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_file_validates_without_warnings(path: Path) -> None:
    spec = load_spec(path)
    assert guardrail_warnings(spec) == []
    if spec.task_type is not None:
        lo, hi = RANK_BANDS[spec.task_type]
        assert lo <= bounds(spec.space.r)[0] and bounds(spec.space.r)[1] <= hi


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_file_is_commented(path: Path) -> None:
    assert path.read_text().lstrip().startswith("#")
