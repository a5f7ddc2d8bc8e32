"""Checkpoint folders as bytes, so that a trial on another node (or another process) can hand
its checkpoint to the pack and take the pack's checkpoints back through Ray's object store."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def pack_folder(folder: Path) -> bytes:
    """The files of ``folder`` (flat or nested) as an uncompressed tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
    return buffer.getvalue()


def unpack_folder(blob: bytes, folder: Path) -> Path:
    """``pack_folder``'s bytes back into ``folder`` (created); only plain files, inside it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(folder, filter="data")
    return folder
