"""Per-trial memory, estimated before anything is reserved: the base weights at their dtype or
quantized bits, the adapter with its gradients and Adam state, and the activations at
batch x sequence length, with and without gradient checkpointing.

The model's shape comes from its weight files' headers (safetensors: names and shapes, read as
JSON) or, for a hub id, from a config in the preflight. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from lora_hpo.spec.space_params import bounds, listed
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.target_modules import adapted_names

MiB = 1 << 20
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ADAPTER_BYTES = 16  # fp32 weight + fp32 grad + Adam's two fp32 moments, per trainable value
QUANT_OVERHEAD = {4: 0.5 + 4 / 64, 8: 1.0 + 4 / 4096}  # bytes per quantized weight, with scales
RUNTIME_CPU = 128 * MiB  # a trial process's own growth beyond the model (measured on MiniLM)
RUNTIME_GPU = 512 * MiB  # the CUDA context and cuBLAS workspace


@dataclass(frozen=True)
class Shape:
    """What the estimate needs of a model: its Linear weights (name -> (out, in)), the other
    parameters' count, and the sizes activations scale with."""

    linears: dict[str, tuple[int, int]]
    other_params: int
    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int = 1

    @property
    def params(self) -> int:
        return self.other_params + sum(o * i for o, i in self.linears.values())


@dataclass(frozen=True)
class Estimate:
    weights: int
    adapter: int
    activations: int
    activations_checkpointed: int
    checkpointing: bool
    overhead: int = 0  # the runtime's own: allocator, Trainer, data; the CUDA context on a GPU

    @property
    def total(self) -> int:
        acts = self.activations_checkpointed if self.checkpointing else self.activations
        return self.weights + self.adapter + acts + self.overhead

    def line(self, dtype: str, r: int, batch: int, seq: int) -> str:
        def mib(n: int) -> str:
            return f"{n / MiB:,.0f} MiB" if n >= MiB else f"{n / MiB:.1f} MiB"

        acts = f"activations {mib(self.activations)} at batch {batch} x {seq} tokens"
        acts += f" ({mib(self.activations_checkpointed)} with gradient checkpointing)"
        return (
            f"memory per trial (estimate): base weights {mib(self.weights)} ({dtype}), adapter +"
            f" optimizer {mib(self.adapter)} at r={r}, {acts}, runtime {mib(self.overhead)};"
            f" total {mib(self.total)}"
        )


def estimate(
    shape: Shape,
    *,
    dtype: str,
    bits: int | None,
    targets: list[str],
    r: int,
    batch: int,
    seq: int,
    checkpointing: bool,
    head_params: int = 0,
    gpu: bool = False,
) -> Estimate:
    """The estimate for one trial; ``targets`` are the Linear names the adapter wraps."""
    width = BYTES.get(dtype, 4)
    adapted = [shape.linears[n] for n in targets if n in shape.linears]
    linear_values = sum(o * i for o, i in shape.linears.values())
    per_linear = QUANT_OVERHEAD[bits] if bits else width
    weights = int(linear_values * per_linear + shape.other_params * width)
    adapter = ADAPTER_BYTES * (sum(r * (o + i) for o, i in adapted) + head_params)
    tokens = batch * seq
    # activations kept for backward, per token and layer, in 16-bit (Korthikanti et al. 2022,
    # "Reducing activation recomputation"): 34 h + 5 a s bytes; scaled for 32-bit
    per_layer = (34 * shape.hidden + 5 * shape.heads * seq) * width / 2
    logits = tokens * shape.vocab * 8 if shape.vocab else 0  # fp32 logits and their gradient
    full = int(tokens * per_layer * shape.layers) + logits
    # with checkpointing: each layer's input and output kept; in backward one layer is
    # recomputed, and its activations and their gradients live at once (about 3 layers' worth)
    kept = int(tokens * (2 * shape.hidden * width * shape.layers + 3 * per_layer)) + logits
    overhead = RUNTIME_GPU if gpu else RUNTIME_CPU
    return Estimate(weights, adapter, full, min(kept, full), checkpointing, overhead)


def _safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, dict[str, object]] = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header


def shape_from_folder(folder: Path) -> Shape | None:
    """The model's shape from its folder (config.json and *.safetensors headers), or None."""
    files = sorted(folder.glob("*.safetensors"))
    try:
        config = json.loads((folder / "config.json").read_text())
        tensors = {k: v for f in files for k, v in _safetensors_header(f).items()}
    except (OSError, ValueError, struct.error):
        return None
    if not tensors:
        return None
    linears: dict[str, tuple[int, int]] = {}
    other = 0
    for name, info in tensors.items():
        dims = [int(d) for d in info["shape"]]  # type: ignore[attr-defined]
        if name.endswith(".weight") and len(dims) == 2 and "embed" not in name:
            linears[name.removesuffix(".weight")] = (dims[0], dims[1])
        else:
            count = 1
            for d in dims:
                count *= d
            other += count
    return Shape(
        linears=linears,
        other_params=other,
        hidden=int(config.get("hidden_size") or config.get("n_embd") or 0),
        layers=int(config.get("num_hidden_layers") or config.get("n_layer") or 0),
        vocab=int(config.get("vocab_size") or 0),
        intermediate=int(
            config.get("intermediate_size") or 4 * int(config.get("hidden_size") or 0)
        ),
        heads=int(config.get("num_attention_heads") or config.get("n_head") or 1),
    )


def planned_dtype(spec: StudySpec) -> str:
    """The dtype the base weights will have: ``model.dtype``, where ``auto`` is bfloat16 for
    a trial with a GPU (the usual case) and float32 on CPU."""
    if spec.model.dtype != "auto":
        return spec.model.dtype
    return "bfloat16" if spec.resources.gpu > 0 else "float32"


def estimate_for(spec: StudySpec, shape: Shape, labels: int = 0) -> Estimate:
    """The estimate for the spec's largest trial (its highest rank)."""
    q = spec.model.quantization
    if spec.task != "causal-lm":
        shape = dataclasses.replace(shape, vocab=0)  # a small head, not LM logits
    names = list(shape.linears)
    targets = {n for t in listed(spec.space.target_modules) for n in adapted_names(names, t)}
    return estimate(
        shape,
        dtype=planned_dtype(spec),
        bits=q.bits if q else None,
        targets=sorted(targets),
        r=int(bounds(spec.space.r)[1]),
        batch=spec.training.batch_size,
        seq=spec.data.max_length,
        checkpointing=spec.training.gradient_checkpointing,
        head_params=shape.hidden * labels if labels else 0,
        gpu=spec.resources.gpu > 0,
    )


def packed_estimate(e: Estimate, k: int) -> Estimate:
    """A pack of ``k``: one base, k adapters with their optimizer state and micro-batches."""
    return dataclasses.replace(
        e,
        adapter=k * e.adapter,
        activations=k * e.activations,
        activations_checkpointed=k * e.activations_checkpointed,
    )


def describe_memory(spec: StudySpec, shape: Shape, labels: int = 0) -> str:
    e = estimate_for(spec, shape, labels)
    r = int(bounds(spec.space.r)[1])
    dtype = (
        f"{spec.model.quantization.bits}-bit" if spec.model.quantization else planned_dtype(spec)
    )
    line = e.line(dtype, r, spec.training.batch_size, spec.data.max_length)
    k = spec.search.pack
    if k > 1:
        packed = packed_estimate(e, k)
        alone = k * e.total / MiB
        line += f"; per pack of {k}: {packed.total / MiB:,.0f} MiB ({k} unpacked: {alone:,.0f} MiB)"
    return line
