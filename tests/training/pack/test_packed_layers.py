"""Row stability of the packed base layers: a layer fed rows with no token axis (a pooler)
computes each adapter's rows in a matrix product of their own, so they round as they would
alone; inputs with a token axis go through the base in one product."""

from __future__ import annotations

import torch
from torch import nn

from lora_hpo.training.pack.packed_layers import Routing, RowStableLinear, Segment


def _calls(layer: nn.Linear) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    return shapes


def test_rows_without_a_token_axis_go_through_the_base_per_segment() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    routing = Routing(segments=(Segment("a", 0, 3, 0), Segment("b", 3, 8, 0)))
    shapes = _calls(base)
    x = torch.randn(8, 16)
    out = RowStableLinear(base, routing)(x)
    assert shapes == [(3, 16), (5, 16)]
    assert torch.equal(out[:3], base(x[:3])) and torch.equal(out[3:], base(x[3:]))


def test_rows_with_a_token_axis_and_a_single_segment_take_one_product() -> None:
    base = nn.Linear(16, 8)
    shapes = _calls(base)
    two = Routing(segments=(Segment("a", 0, 2, 0), Segment("b", 2, 4, 0)))
    RowStableLinear(base, two)(torch.randn(4, 5, 16))
    RowStableLinear(base, Routing(segments=(Segment("a", 0, 4, 0),)))(torch.randn(4, 16))
    assert shapes == [(4, 5, 16), (4, 16)]
