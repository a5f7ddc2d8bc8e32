"""The packs of a packed study (``search.pack`` > 1): ⌈max_concurrent / pack⌉ pack actors,
each asking for one unpacked trial's resources, started before the study and stopped after
it. The study's trials are thin clients that find the packs by name."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lora_hpo.spec.spec_schema import StudySpec

NAMESPACE = "lora-hpo-packs"
CLIENT_CPU = 0.01  # a client only relays; the pack holds the rest of one trial's CPUs
STOP_WAIT_S = 30.0  # how long a pack may take to end its thread and remove its folder


def pack_count(spec: StudySpec) -> int:
    return math.ceil(spec.search.max_concurrent / spec.search.pack)


def client_cpu(spec: StudySpec) -> float:
    """Each client's CPU share: a pack and its clients together ask for one trial's CPUs,
    so the packs never take the CPUs that their clients need to be scheduled."""
    return min(CLIENT_CPU, spec.resources.cpu / (2 * spec.search.pack))


def pack_cpu(spec: StudySpec) -> float:
    return spec.resources.cpu - spec.search.pack * client_cpu(spec)


@contextmanager
def started_packs(spec: StudySpec) -> Iterator[list[str]]:
    """Start the study's packs; yields their actor names; on the way out, stops them (each
    removes its scratch folder) and kills them."""
    import ray

    from lora_hpo.training.pack.pack_actor import PackActor, max_calls

    k, tag = spec.search.pack, uuid.uuid4().hex[:8]
    names = [f"{spec.name}-pack-{tag}-{i}" for i in range(pack_count(spec))]
    remote = ray.remote(PackActor)
    handles: list[Any] = [
        remote.options(
            name=name,
            namespace=NAMESPACE,
            num_cpus=pack_cpu(spec),
            num_gpus=spec.resources.gpu,
            max_concurrency=max_calls(k),
            max_restarts=spec.search.max_failures,
        ).remote(spec, k)
        for name in names
    ]
    try:
        yield names
    finally:
        stopping = [handle.stop.remote() for handle in handles]  # each removes its folder
        ray.wait(stopping, num_returns=len(stopping), timeout=STOP_WAIT_S)
        for handle in handles:
            ray.kill(handle)


def client_resources(spec: StudySpec) -> dict[str, float]:
    return {"cpu": client_cpu(spec)}
