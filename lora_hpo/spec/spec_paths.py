"""Every path in a spec resolves relative to the spec file's folder, the way docker-compose
does: ``data.files`` and ``model.path``. ``~`` is expanded; absolute paths and URIs
(``s3://...``) stay as given. The loader makes them absolute once, on the driver, so the spec
means the same files wherever it travels (Ray workers, a cluster, a resumed study)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from lora_hpo.spec.space_params import SplitFiles
from lora_hpo.spec.spec_schema import DataSpec, StudySpec


def absolute(path: str, base: Path) -> str:
    """``path`` made absolute against ``base`` (URIs and absolute paths unchanged)."""
    if "://" in path:
        return path
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else Path(os.path.normpath(base / expanded)))


def _files(data: DataSpec, base: Path) -> tuple[str, ...] | SplitFiles | None:
    if isinstance(data.files, SplitFiles):
        return SplitFiles(
            tuple((s, tuple(absolute(f, base) for f in fs)) for s, fs in data.files.splits)
        )
    if data.files is None:
        return None
    return tuple(absolute(f, base) for f in data.files)


def resolve_paths(spec: StudySpec, base: Path) -> StudySpec:
    """The spec with its local paths made absolute against ``base``."""
    base = base.expanduser().resolve()
    data = dataclasses.replace(spec.data, files=_files(spec.data, base))
    model = spec.model
    if model.path is not None:
        model = dataclasses.replace(model, path=absolute(model.path, base))
    return dataclasses.replace(spec, data=data, model=model)
