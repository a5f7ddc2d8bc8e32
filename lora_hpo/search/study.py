"""THE study entry point: ``run_study`` and ``resume_study`` pick the strategy named by
``search.strategy`` and run it. ``lora-hpo run``, ``lora-hpo resume``, the job on a cluster
and the Python API all come through here; nothing else knows "single or staged".

A strategy is a function ``(spec, context, restore) -> StudyResult`` that runs one or more
studies through the single-study runner (``tuner.run_one``). A new strategy is one module in
``strategies/`` and one line in ``STRATEGIES``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from lora_hpo.search.capacity import DEFAULT_WAIT_S, bundle, release
from lora_hpo.search.context import StudyContext, View
from lora_hpo.search.result import StudyResult
from lora_hpo.search.runtime import check_gpu_memory, ensure_capacity, start, wait_preloaded
from lora_hpo.search.shared_storage import check_shared
from lora_hpo.search.storage import (
    holds_study,
    locate_study,
    spec_file,
    storage_of,
    storage_root,
    study_dir,
)
from lora_hpo.search.strategies import single, staged
from lora_hpo.search.tuner import can_restore
from lora_hpo.spec.env import JOB_ENV
from lora_hpo.spec.loader import load_spec
from lora_hpo.spec.schema import StudySpec
from lora_hpo.tracking.study import StudyTracking

Say = Callable[[str], None]


class Strategy(Protocol):
    def __call__(self, spec: StudySpec, ctx: StudyContext, restore: bool) -> StudyResult: ...


STRATEGIES: dict[str, Strategy] = {"single": single.run, "staged": staged.run}


def _preflight(spec: StudySpec, say: Say) -> int:
    """The preflight on this machine (the driver): bad input fails here, before Ray starts.
    Returns the per-trial memory estimate in bytes."""
    from lora_hpo.training.preflight import preflight

    report = preflight(spec, on_cluster=os.environ.get(JOB_ENV) == "1")
    say(report.line())
    return report.memory_bytes


def _prepare(
    spec: StudySpec,
    address: str | None,
    check: bool,
    say: Say,
    wait_s: float,
    storage: tuple[str, str | None],
) -> None:
    """Ray's start and the preflight at once (each takes seconds); then, with the preflight
    passed, the capacity the study needs, that every node that can run a trial reads the
    storage root (``storage``: the root, and the ``--storage-path`` given), and the GPU share
    check; then, on a local Ray whose workers preload the trial's modules, the end of that
    preload (``runtime.wait_preloaded``: a trial actor asked for earlier would boot a process
    of its own)."""
    found: dict[str, Any] = {"need": 0}

    def run_preflight() -> None:
        try:
            found["need"] = _preflight(spec, say)
        except BaseException as exc:  # re-raised below, on the caller's thread
            found["error"] = exc

    worker = threading.Thread(target=run_preflight, name="lora-hpo-preflight")
    if check:
        worker.start()
    joined = start(address, spec)
    if check:
        worker.join()
    if "error" in found:
        raise found["error"]
    ensure_capacity(spec, joined, wait_s)
    check_shared(storage[0], bundle(spec), storage[1])
    check_gpu_memory(spec, found["need"])
    wait_preloaded()  # a local Ray's first workers import the trial's modules meanwhile


def _context(
    storage: str, tracking: StudyTracking | bool, view: View | None, callbacks: Any
) -> StudyContext:
    track = StudyTracking() if tracking is True else (tracking or None)
    return StudyContext(storage, track, view, tuple(callbacks or ()))


def run_study(
    spec: StudySpec,
    *,
    storage_path: str | None = None,
    address: str | None = None,
    tracking: StudyTracking | bool = True,
    view: View | None = None,
    callbacks: list[Any] | None = None,
    check: bool = True,
    say: Say = print,
    wait_for_resources: float = DEFAULT_WAIT_S,
    resume_if_exists: bool = False,
) -> StudyResult:
    """Run a study end to end; its trials come back best first.

    ``tracking``: True records it in MLflow at the default store (the spec's
    ``tracking.tracking_uri``, else MLFLOW_TRACKING_URI, else ./mlflow.db); a StudyTracking
    picks the store; False records nothing. ``view`` makes a live view per study. ``check``
    runs the preflight first (model, tokenizer, data, labels, target modules). On a cluster
    it joins, the study waits up to ``wait_for_resources`` seconds for a node to fit a trial.
    ``resume_if_exists``: when the storage root already holds this study (the same spec), it
    continues there, as ``resume`` would (a retried job picks up where its killed driver
    stopped); a different study under the same name is refused."""
    storage = storage_root(storage_path)
    again = resume_if_exists and holds_study(spec, storage)
    _prepare(spec, address, check, say, wait_for_resources, (storage, storage_path))
    restore = again and can_restore(study_dir(storage, spec.name))
    if restore:
        say(f"continuing study {spec.name!r} from {study_dir(storage, spec.name)}")
    ctx = _context(storage, tracking, view, callbacks)
    try:
        return STRATEGIES[spec.search.strategy](spec, ctx, restore)
    finally:
        release()


def resume_study(
    name_or_path: str,
    *,
    storage_path: str | None = None,
    address: str | None = None,
    tracking: StudyTracking | bool = True,
    view: View | None = None,
    callbacks: list[Any] | None = None,
    check: bool = True,
    say: Say = print,
    wait_for_resources: float = DEFAULT_WAIT_S,
) -> StudyResult:
    """Continue a killed study from its directory (a name under the storage root, a path or
    a URI): finished trials are kept, the rest resumed."""
    directory = locate_study(name_or_path, storage_path)
    spec = load_spec(spec_file(directory))
    storage = storage_of(directory)
    named = storage_path or (None if directory == study_dir(storage, name_or_path) else storage)
    _prepare(spec, address, check, say, wait_for_resources, (storage, named))
    ctx = _context(storage, tracking, view, callbacks)
    try:
        return STRATEGIES[spec.search.strategy](spec, ctx, True)
    finally:
        release()
