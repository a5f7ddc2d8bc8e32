"""The files lora-hpo writes, in one place: their names (readers and writers live in different
layers: a trial writes its record, tracking and analysis read it), and how a small state file
is read and written at a local path or a URI (s3://...) through pyarrow's filesystems."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

SPEC_FILE = "lora_hpo_spec.yaml"  # the resolved spec: in the study directory and every export
TRIAL_FILE = "lora_hpo_trial.json"  # params + metrics, beside every adapter checkpoint
TRACKER_STATE = "lora_hpo_mlflow.json"  # the MLflow tracker's state and outbox, per study
STAGED_STATE = "lora_hpo_staged.json"  # a staged study's finished stages and decision
DEFAULT_STORAGE = "lora-hpo-results"  # the results root under the working directory


def cache_dir() -> Path:
    """``$LORA_HPO_CACHE`` if set, else ``~/.cache/lora-hpo``: converted demo models, and the
    local mirrors of state files kept on a URI."""
    env = os.environ.get("LORA_HPO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lora-hpo"


def local_mirror(uri: str) -> Path:
    """Where this machine keeps its copy of a state file that lives at ``uri``."""
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return cache_dir() / "state" / key / uri.rstrip("/").rsplit("/", 1)[-1]


def read_text(path: str | Path) -> str | None:
    """A small text file at a local path or URI; None when it does not exist."""
    from pyarrow import fs

    path = str(path)
    filesystem, where = fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))
    if filesystem.get_file_info(where).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(where) as src:
        return bytes(src.read()).decode()


def write_text(path: str | Path, text: str) -> None:
    """Write a small text file at a local path (write + rename) or a URI (object stores
    replace an object whole)."""
    from pyarrow import fs

    path = str(path)
    if "://" not in path:
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(local)
        return
    filesystem, where = fs.FileSystem.from_uri(path)
    filesystem.create_dir(where.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(where) as out:
        out.write(text.encode())


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
