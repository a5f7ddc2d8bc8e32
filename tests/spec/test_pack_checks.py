"""``search.pack``: what packed trials cannot train is refused by the field that asks for it,
and ``validate`` / ``show-space`` explain how trials, packs and resources combine."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lora_hpo.spec.pack_checks import explain_pack
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


def _spec(pack: int = 2, resources: dict[str, Any] | None = None, **sections: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["search"] |= {"pack": pack, "max_concurrent": 4, "num_samples": 8}
    data["resources"] = resources or {"cpu": 1}
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    return parse_spec(data)


@pytest.mark.parametrize(
    ("sections", "field", "fragment"),
    [
        ({"space": {"adapter": {"choices": ["lora", "adalora"]}}}, "space.adapter", "LoRA only"),
        ({"training": {"gradient_accumulation": 2}}, "training.gradient_accumulation",
         "one micro-batch per step (1), but got 2"),
        ({"training": {"gradient_checkpointing": True}}, "training.gradient_checkpointing",
         "do not checkpoint"),
        ({"training": {"optim": "adafactor"}}, "training.optim",
         "['adamw_torch', 'adamw_torch_fused'], but got 'adafactor'"),
    ],
)  # fmt: skip
def test_what_packed_trials_cannot_train_is_refused(
    sections: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as err:
        _spec(**sections)
    (problem,) = [p for p in err.value.problems if p.path == field]
    assert fragment in problem.message and "search.pack is 2" in problem.message


def test_pack_must_be_positive() -> None:
    with pytest.raises(SpecError) as err:
        _spec(pack=0)
    assert any(p.path == "search.pack" for p in err.value.problems)


def test_one_is_unpacked_and_explains_nothing() -> None:
    spec = _spec(pack=1, training={"gradient_accumulation": 2})
    assert explain_pack(spec.search, spec.resources) is None


def test_the_explanation_counts_packs_and_gpu_shares() -> None:
    spec = _spec(pack=3, resources={"cpu": 2, "gpu": 0.5})
    line = explain_pack(spec.search, spec.resources)
    assert line is not None
    assert "4 trials at once in 2 pack(s) of up to 3" in line
    assert "(2 CPU, 0.5 GPU); 2 packs share a GPU" in line
