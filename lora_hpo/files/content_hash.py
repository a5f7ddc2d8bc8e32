"""Content hashes of model folders and files, cheap for multi-GB weights: the lineage of a
base model that has no hub revision."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_SAMPLE = 1 << 16  # bytes hashed from each end of a large file
_WEIGHTS = (".safetensors", ".bin", ".pt", ".gguf")


def files_hash(paths: Iterable[Path]) -> str:
    """A content hash of files: name, size, and the first and last 64 KiB of each (cheap
    for multi-GB weights, and it changes when the bytes change at either end)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(_SAMPLE))
            if size > 2 * _SAMPLE:
                fh.seek(-_SAMPLE, os.SEEK_END)
                digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()[:16]


def folder_hash(directory: Path) -> str:
    """The content hash of a model folder: its config and weight files."""
    files = [p for p in directory.iterdir() if p.is_file()]
    picked = [p for p in files if p.name == "config.json" or p.suffix in _WEIGHTS]
    return files_hash(picked) if picked else "missing"
