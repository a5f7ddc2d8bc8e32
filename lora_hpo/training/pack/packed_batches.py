"""Batches for packed adapters: each adapter's own pass over the training set (a permutation
per epoch from its own seed), and the micro-batches of several adapters padded on the right
to one length and concatenated, so that a row's real tokens keep their positions whatever
else is in the batch."""

from __future__ import annotations

from typing import Any

import torch

from lora_hpo.training.row_encoding import IGNORE_INDEX


class DataOrder:
    """An adapter's data order: shuffled each epoch by its own generator, the last batch of
    an epoch possibly short (as transformers' Trainer does without ``drop_last``)."""

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size = size, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.pos = 0

    def next(self) -> list[int]:
        if self.pos >= len(self.order):
            self.order = torch.randperm(self.size, generator=self.gen).tolist()
            self.pos = 0
        rows = self.order[self.pos : self.pos + self.batch_size]
        self.pos += len(rows)
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.order, self.pos = list(state["order"]), int(state["pos"])


def fill_value(key: str, pad_id: int) -> int:
    return {"input_ids": pad_id, "labels": IGNORE_INDEX}.get(key, 0)


def concat_right_padded(parts: list[dict[str, list[Any]]], pad_id: int) -> dict[str, Any]:
    """Columnar batches (``dataset[rows]``) joined into one batch of tensors, every sequence
    padded on the right to the longest; scalar labels (classification) stay a vector."""
    keys = list(parts[0])
    length = max(len(ids) for part in parts for ids in part["input_ids"])
    out: dict[str, Any] = {}
    for key in keys:
        column = [value for part in parts for value in part[key]]
        if not isinstance(column[0], list):
            out[key] = torch.tensor(column)
            continue
        fill = fill_value(key, pad_id)
        out[key] = torch.tensor([list(v) + [fill] * (length - len(v)) for v in column])
    return out
