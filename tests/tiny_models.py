"""Tiny random models and toy data written to disk, so the real from_pretrained /
load_dataset paths run offline in seconds."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

WORDS = ["red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "car", "fish"]


# A chat template for the word-level tokenizer: each turn "[BOS] role content [EOS]".
CHAT_TEMPLATE = (
    "{% for m in messages %}[BOS] {{ m['role'] }} {{ m['content'] }} [EOS] {% endfor %}"
    "{% if add_generation_prompt %}[BOS] assistant {% endif %}"
)
ROLE_WORDS = ["system", "user", "assistant"]


def tiny_tokenizer(chat: bool = False) -> Any:
    """A word-level tokenizer over the toy vocabulary (so a tiny model can learn fast); with
    ``chat``, the role words too and ``CHAT_TEMPLATE``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "say", "then", *WORDS]
    vocab = {w: i for i, w in enumerate(words + (ROLE_WORDS if chat else []))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def write_tiny_llama(path: Path, chat: bool = False) -> Path:
    """A 2-layer LlamaForCausalLM (hidden 64) with a word-level tokenizer, saved to ``path``;
    with ``chat``, a tokenizer with a chat template (``tiny_tokenizer``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer(chat)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        initializer_range=0.2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_copy_task(path: Path, n: int = 200) -> Path:
    """JSON lines of a learnable task: the completion is the word after the prompt's last word
    in a fixed cycle."""
    rng = random.Random(0)
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        seq = rng.choices(WORDS, k=4)
        nxt = WORDS[(WORDS.index(seq[-1]) + 1) % len(WORDS)]
        rows.append({"prompt": "say " + " ".join(seq), "completion": " " + nxt})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def write_chat_task(path: Path, n: int = 120) -> Path:
    """JSON lines of the copy task as conversations: two user turns, each answered with the
    word after the user's last word (the first conversations open with a system message)."""
    rng = random.Random(0)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        messages = [{"role": "system", "content": "then"}] if i % 2 else []
        for _ in range(2):
            seq = rng.choices(WORDS, k=3)
            nxt = WORDS[(WORDS.index(seq[-1]) + 1) % len(WORDS)]
            messages.append({"role": "user", "content": "say " + " ".join(seq)})
            messages.append({"role": "assistant", "content": nxt})
        rows.append({"messages": messages})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def weights_hash(model: Any) -> str:
    """An exact content hash of a model's weights (every byte of every tensor, quantized ones
    included): a trial must leave the cached base unchanged."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
