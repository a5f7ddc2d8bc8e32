"""Small files (state, specs, markers) at a local path or a URI (``s3://...``) through pyarrow's
filesystems, and this machine's cache folder, which keeps the local mirrors of state files
that live on a URI."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path


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
    """Write a small text file at a local path or a URI (object stores replace an object
    whole). Locally: write a temporary file beside it, fsync it, rename it over the old one,
    fsync the directory, so that a crash leaves the old file or the new one, never a torn
    one; a failed write (a full disk) removes the temporary file and raises the OSError."""
    from pyarrow import fs

    path = str(path)
    if "://" not in path:
        _replace_local(Path(path), text.encode())
        return
    filesystem, where = fs.FileSystem.from_uri(path)
    filesystem.create_dir(where.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(where) as out:
        out.write(text.encode())


def _replace_local(local: Path, data: bytes) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()  # ENOSPC shows here (or at close) on most file systems
            os.fsync(out.fileno())
        tmp.replace(local)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no stray .tmp beside the state file
        raise
    _fsync_dir(local.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; a file system that cannot fsync a directory is left be."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
