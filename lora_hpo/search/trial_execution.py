"""How a study's trials execute: one seam, chosen once per study beside the strategy
(``execution_for``) and used by the single-study runner (``tune_study.run_one``) for each Ray Tune
study the strategy runs.

- ``TrainerTrials``: each trial is a Tune actor that trains one adapter with transformers'
  Trainer (``training.tune_trainable``). The local speed-ups apply where they can: on a local Ray
  this process started, the trial actors take the workers Ray prestarts, already preloaded
  (``ray_internals.plain_trial_actors``, ``ray_runtime.local_options``); on a one-node Ray, at a
  study's tail the idle slots lend their threads to the trials left (``thread_lending``).
- ``PackedTrials`` (``search.pack`` > 1): K trials share one frozen base in a pack actor; each
  trial is a thin Tune client of a pack (``training.pack.pack_client``). The packs start before the
  study and stop after it.

An execution is a context entered for one Tune study: it owns the trainable (with the
resources it asks for), the Tune callbacks it needs and the actors it starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from lora_hpo.search.ray_runtime import RayRuntime
from lora_hpo.spec.spec_schema import StudySpec


class TrialExecution(Protocol):
    def __enter__(self) -> TrialExecution: ...
    def __exit__(self, *exc: object) -> None: ...
    def trainable(self) -> Any:
        """The Tune trainable, with its resources."""
        ...

    def callbacks(self) -> list[Any]:
        """The Tune callbacks this execution needs beside the study's own."""
        ...


ExecutionFor = Callable[[StudySpec], TrialExecution]  # a study's spec -> how its trials run


def execution_for(runtime: RayRuntime) -> ExecutionFor:
    """How the trials of each study run on ``runtime``: packed when the spec packs, else one
    Trainer per trial, with the local speed-ups on a local Ray this process started."""

    def make(spec: StudySpec) -> TrialExecution:
        if spec.search.pack > 1:
            return PackedTrials(spec)
        return TrainerTrials(spec, local=runtime.local)

    return make


class TrainerTrials:
    """One transformers Trainer per trial, each trial a Tune actor with one trial's resources."""

    def __init__(self, spec: StudySpec, local: bool = False) -> None:
        self.spec, self.local = spec, local
        self._stack = contextlib.ExitStack()
        self._lending: Any = None

    def __enter__(self) -> TrainerTrials:
        from lora_hpo.search.thread_lending import ThreadLending

        if self.local:
            from lora_hpo.search.ray_internals import plain_trial_actors

            self._stack.enter_context(plain_trial_actors())
        # lends only where every trial runs on this driver's node, on CPU (``thread_lending``)
        self._lending = self._stack.enter_context(ThreadLending(self.spec))
        return self

    def __exit__(self, *exc: object) -> None:
        self._lending = None
        self._stack.close()

    def trainable(self) -> Any:
        from ray import tune

        from lora_hpo.training.tune_trainable import tune_trainable

        threads = self._lending.threads if self._lending is not None else None
        trainable = tune.with_parameters(tune_trainable, spec=self.spec, threads=threads)
        resources = {"cpu": self.spec.resources.cpu, "gpu": self.spec.resources.gpu}
        return tune.with_resources(trainable, resources)

    def callbacks(self) -> list[Any]:
        return list(self._lending.callbacks) if self._lending is not None else []


class PackedTrials:
    """K trials per pack actor on one base; the trials are the packs' thin Tune clients."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self._stack = contextlib.ExitStack()
        self._packs: list[str] = []

    def __enter__(self) -> PackedTrials:
        from lora_hpo.search.pack_actors import started_packs

        self._packs = self._stack.enter_context(started_packs(self.spec))
        return self

    def __exit__(self, *exc: object) -> None:
        self._packs = []
        self._stack.close()

    def trainable(self) -> Any:
        from ray import tune

        from lora_hpo.search.pack_actors import NAMESPACE, client_resources
        from lora_hpo.training.pack.pack_client import packed_trainable

        client = tune.with_parameters(
            packed_trainable, spec=self.spec, packs=self._packs, namespace=NAMESPACE
        )
        return tune.with_resources(client, client_resources(self.spec))

    def callbacks(self) -> list[Any]:
        return []
