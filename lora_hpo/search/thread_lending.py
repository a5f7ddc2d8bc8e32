"""Idle slots lent to the trials left: once the searcher has made its last trial, a slot that
no trial will take again lends its threads to the trials still running (a lone trial at the
tail of a 2-slot study trains on both cores). The driver writes the count per trial
(``budget``) into a file that each trial reads at a step's start
(``lora_hpo.training.trial_threads``).

Only where that is safe to know: every trial runs on the driver's own node (a one-node Ray,
as ``lora-hpo run`` starts), on CPU, unpacked. Elsewhere trials keep their own share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.trial_threads import LentThreads, own_threads, write_count

LIVE = ("PENDING", "RUNNING", "PAUSED")  # trials that hold, or will take, a slot


def budget(live: int, made: int, num_samples: int, own: int, total: int) -> int:
    """Threads per live trial: its own share while the searcher may still make trials (a new
    one takes the free slot), else the ``total`` the study held at full concurrency, split
    over the ``live`` trials."""
    if made < num_samples or live < 1:
        return own
    return max(own, total // live)


def one_node_total(spec: StudySpec) -> int | None:
    """The threads the study's slots hold together, when its trials can only run on the
    driver's node, on CPU; None otherwise (nothing is lent)."""
    import ray

    if spec.resources.gpu > 0 or spec.search.pack > 1:
        return None
    alive = [n for n in ray.nodes() if n.get("Alive")]
    if len(alive) != 1 or alive[0]["NodeID"] != ray.get_runtime_context().get_node_id():
        return None
    own = own_threads(spec.resources.cpu)
    cpus = int(alive[0].get("Resources", {}).get("CPU", 0))
    slots = min(spec.search.max_concurrent, max(1, int(cpus // spec.resources.cpu)))
    return min(cpus, slots * own) if cpus >= own else None


class LendIdleThreads(tune.Callback):  # type: ignore[misc]
    """Tune callback: after each controller step, the thread count per trial, written to
    ``path`` when it changes."""

    def __init__(self, path: Path, spec: StudySpec, total: int) -> None:
        self.path, self.total = path, total
        self.own, self.num_samples = own_threads(spec.resources.cpu), spec.search.num_samples
        self.count: int | None = None

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        live = sum(1 for t in trials if t.status in LIVE)
        count = budget(live, len(trials), self.num_samples, self.own, self.total)
        if count != self.count:
            write_count(self.path, count)
            self.count = count


class ThreadLending:
    """The study's lending, as a context: ``threads`` for the trials to follow (None when
    nothing is lent), ``callbacks`` for the tuner; the count's folder is removed at the end."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self.threads: LentThreads | None = None
        self.callbacks: list[Any] = []
        self._dir: Scratch | None = None

    def __enter__(self) -> ThreadLending:
        own = own_threads(self.spec.resources.cpu)
        total = one_node_total(self.spec)
        if total is not None and total > own:
            self._dir = Scratch("threads")
            path = Path(self._dir.name) / "threads"
            write_count(path, own)
            self.threads = LentThreads(str(path), own)
            self.callbacks = [LendIdleThreads(path, self.spec, total)]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()
