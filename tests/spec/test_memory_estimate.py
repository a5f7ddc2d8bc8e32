"""The per-trial memory estimate (no torch): its parts scale as they should, it reads a model
folder's headers, and it names its parts in words."""

from __future__ import annotations

import copy
from typing import Any

from lora_hpo.spec.memory_estimate import Shape, describe_memory, estimate, shape_from_folder
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.demo_assets import existing_model_dir
from tests.conftest import BASE_SPEC

SHAPE = Shape(
    linears={f"l{i}.{n}": (512, 512) for i in range(4) for n in ("q", "k", "v", "o")},
    other_params=1_000_000,
    hidden=512,
    layers=4,
    vocab=32000,
    intermediate=2048,
    heads=8,
)


def _e(**kw: Any) -> Any:
    base = {"dtype": "float32", "bits": None, "targets": ["l0.q", "l0.v"], "r": 8, "batch": 8,
            "seq": 128, "checkpointing": False}  # fmt: skip
    return estimate(SHAPE, **(base | kw))


def test_weights_shrink_with_the_dtype_and_the_bits() -> None:
    fp32, bf16 = _e().weights, _e(dtype="bfloat16").weights
    q8, q4 = _e(dtype="bfloat16", bits=8).weights, _e(dtype="bfloat16", bits=4).weights
    assert fp32 == 2 * bf16 and bf16 > q8 > q4


def test_adapter_grows_with_rank_and_targets_and_activations_with_tokens() -> None:
    assert _e(r=16).adapter == 2 * _e(r=8).adapter
    assert _e(targets=["l0.q"]).adapter * 2 == _e().adapter
    assert _e(batch=16).activations > 1.9 * _e(batch=8).activations
    e = _e(checkpointing=True)
    assert e.activations_checkpointed < e.activations and e.total < _e().total


def test_the_minilm_folder_headers_give_its_shape() -> None:
    folder = existing_model_dir("minilm-l6")
    assert folder is not None
    shape = shape_from_folder(folder)
    assert shape is not None and abs(shape.params - 22_713_728) < 1000
    assert (shape.hidden, shape.layers, shape.heads) == (384, 6, 12)
    line = describe_memory(parse_spec(copy.deepcopy(BASE_SPEC)), shape)
    assert line.startswith("memory per trial (estimate): base weights 87 MiB (float32)")
