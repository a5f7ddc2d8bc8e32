"""Where a study's results live: the storage root (an absolute local path, or a URI such as
s3://bucket/studies), the study directory under it, and the resolved spec kept there so that
``resume NAME`` can rebuild the study. Local paths and URIs go through pyarrow's filesystems."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import DEFAULT_STORAGE, SPEC_FILE, TRIAL_FILE
from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import spec_to_dict
from lora_hpo.spec.spec_schema import StudySpec

_DOWNLOADED: list[Scratch] = []  # spec files fetched from a URI (spec_file)


def storage_root(storage_path: str | None) -> str:
    """An absolute local path (default under the working directory) or a URI (s3://, ...)."""
    root = storage_path or os.environ.get("LORA_HPO_STORAGE") or DEFAULT_STORAGE
    if "://" in root:
        return root
    path = Path(root).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".lora-hpo-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--storage-path: cannot write to {str(path)!r} ({exc.strerror or exc})"
        ) from None
    return str(path)


def study_dir(storage: str, name: str) -> str:
    """The study's directory under a storage root (a path or a URI)."""
    return f"{storage.rstrip('/')}/{name}"


def storage_of(directory: str) -> str:
    """The storage root that holds a study directory (a path or a URI)."""
    return directory.rstrip("/").rsplit("/", 1)[0]


def is_dir(path: str) -> bool:
    """Whether a local path or a URI is a directory (an object-store prefix with objects)."""
    from pyarrow import fs

    # pyarrow's own retries, not the outage-riding ones: a wrong endpoint fails at once
    filesystem, where = fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))
    return bool(filesystem.get_file_info(where).type == fs.FileType.Directory)


def locate_study(name_or_path: str, storage_path: str | None = None) -> str:
    """The study directory for a name (under the storage root, a path or a URI), or a study
    directory given as a path or a URI."""
    if "://" in name_or_path:
        return name_or_path
    if Path(name_or_path).is_dir():
        return str(Path(name_or_path).resolve())
    candidate = study_dir(storage_root(storage_path), name_or_path)
    if not is_dir(candidate):
        raise UsageError(
            f"NAME_OR_PATH: no study {name_or_path!r}: {candidate!r} is not a directory"
        )
    return candidate


def read_results(directory: str) -> list[list[dict[str, Any]]]:
    """Every trial's reports (Tune's result.json rows) in a study directory, path or URI."""
    import json

    from pyarrow import fs

    from lora_hpo.files.storage_filesystem import storage_filesystem

    filesystem, where = storage_filesystem(directory)
    trials = []
    for info in filesystem.get_file_info(fs.FileSelector(where, allow_not_found=True)):
        if info.type != fs.FileType.Directory:
            continue
        result = f"{info.path}/result.json"
        if filesystem.get_file_info(result).type != fs.FileType.File:
            continue
        with filesystem.open_input_stream(result) as src:
            text = bytes(src.read()).decode()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        if rows:  # a trial that has not reported yet has an empty result.json
            trials.append(rows + _unsynced_report(filesystem, info.path, rows))
    return trials


def prune_checkpoints(directory: str, keep: int) -> int:
    """Delete all but each trial's newest ``keep`` checkpoints in a study directory (path or
    URI); the number deleted. Run when a study ends: while it runs every checkpoint is kept,
    since Tune restores a trial from the checkpoint its last experiment snapshot names, which
    can be older than the trial's newest, and a restore from a deleted one fails."""
    from pyarrow import fs

    from lora_hpo.files.storage_filesystem import storage_filesystem

    filesystem, where = storage_filesystem(directory)
    deleted = 0
    for info in filesystem.get_file_info(fs.FileSelector(where, allow_not_found=True)):
        if info.type != fs.FileType.Directory:
            continue
        found = filesystem.get_file_info(fs.FileSelector(info.path, allow_not_found=True))
        names = sorted(
            i.base_name
            for i in found
            if i.type == fs.FileType.Directory and i.base_name.startswith("checkpoint_")
        )
        for name in names[:-keep] if keep > 0 else names:
            filesystem.delete_dir(f"{info.path}/{name}")
            deleted += 1
    return deleted


def _unsynced_report(filesystem: Any, trial_dir: str, rows: list[dict[str, Any]]) -> list[Any]:
    """The newest checkpoint's report when ``result.json`` ends before it. Tune uploads a
    driver's result.json apart from its experiment state, so a driver killed between the two
    can leave a finished trial's last rows unsynced; the checkpoint (written by the trial,
    with its record) still holds them."""
    import json

    from pyarrow import fs

    if not rows:
        return []
    found = filesystem.get_file_info(fs.FileSelector(trial_dir, allow_not_found=True))
    names = sorted(i.base_name for i in found if i.base_name.startswith("checkpoint_"))
    for name in reversed(names):
        record = f"{trial_dir}/{name}/{TRIAL_FILE}"
        if filesystem.get_file_info(record).type != fs.FileType.File:
            continue
        with filesystem.open_input_stream(record) as src:
            metrics = json.loads(bytes(src.read()).decode())["metrics"]
        if metrics.get("step", 0) > rows[-1].get("step", 0):
            return [{**rows[-1], **metrics}]
        return []
    return []


def holds_study(spec: StudySpec, storage: str) -> bool:
    """Whether the storage root already holds the study ``spec`` (its directory, with the same
    resolved spec). UsageError when that directory holds another spec under the same name:
    continuing it would mix two searches in one study."""
    import yaml

    from lora_hpo.files.small_files import read_text

    where = study_dir(storage, spec.name)
    text = read_text(f"{where}/{SPEC_FILE}")
    if text is None:
        return False
    kept = yaml.safe_load(text)
    mine = yaml.safe_load(yaml.safe_dump(spec_to_dict(spec), sort_keys=False))
    if kept == mine:
        return True
    kept = kept if isinstance(kept, dict) else {}
    differ = sorted(k for k in kept.keys() | mine.keys() if kept.get(k) != mine.get(k))
    raise UsageError(
        f"name: {where!r} already holds a study named {spec.name!r} whose spec differs"
        f" (in {', '.join(differ)}); give this study another name, or continue that one with"
        f" `lora-hpo resume {spec.name}`"
    )


def write_spec(spec: StudySpec, directory: str) -> None:
    """Keep the resolved spec in the study directory."""
    import yaml

    from lora_hpo.files.storage_filesystem import storage_filesystem

    filesystem, path = storage_filesystem(directory)
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{SPEC_FILE}") as out:
        out.write(yaml.safe_dump(spec_to_dict(spec), sort_keys=False).encode())


def spec_file(directory: str) -> str:
    """The study's spec file as a local path (downloaded when the study lives on a URI)."""
    if "://" not in directory:
        return str(Path(directory) / SPEC_FILE)
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(directory)  # read before a study starts: fail fast
    folder = Scratch("spec")
    _DOWNLOADED.append(folder)  # read after this returns: removed when the process ends
    local = Path(folder.name) / SPEC_FILE
    with filesystem.open_input_stream(f"{path}/{SPEC_FILE}") as src:
        local.write_bytes(src.read())
    return str(local)
