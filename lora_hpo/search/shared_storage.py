"""Storage that every trial node reads. On a cluster a study keeps its results, checkpoints and
state where each node that runs a trial can read them: an ``s3://`` or ``gs://`` bucket, or a
mount every pod shares. Ray finds a storage path that a node cannot see only at a trial's
first checkpoint, and then fails every trial, attempt after attempt. ``check_shared`` asks
each node that can run a trial before any trial starts (a marker the driver writes, read back
on the node), and refuses the study (exit 2) naming ``--storage-path``.

Imports no torch: the probe runs in a plain Ray worker on each node."""

from __future__ import annotations

import contextlib
import secrets
import sys
from typing import Any

from lora_hpo.files.small_files import read_text, write_text
from lora_hpo.spec.spec_errors import UsageError

PROBE_TIMEOUT_S = 30.0  # a node whose probe has not answered by then is left unchecked
MARKER = ".lora-hpo-shared-"
ADVICE = (
    "give --storage-path an s3:// or gs:// URI (with the bucket's credentials in every pod),"
    " or a path on a mount every node shares (NFS)"
)


def sees(marker: str, token: str) -> str:
    """On a trial node: "" when ``marker`` holds ``token`` here, else what this node saw."""
    try:
        found = read_text(marker)
    except Exception as exc:  # the node's own storage error (credentials, endpoint, ...)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    if found is None:
        return "not there"
    return "" if found.strip() == token else "another file there"


def trial_nodes(want: dict[str, float]) -> list[dict[str, Any]]:
    """The alive nodes other than this driver's that can run one trial (``want``)."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    return [
        n
        for n in ray.nodes()
        if n.get("Alive")
        and n.get("NodeID") != here
        and all(n.get("Resources", {}).get(k, 0) >= v for k, v in want.items())
    ]


def ask_nodes(nodes: list[dict[str, Any]], marker: str, token: str) -> dict[str, str | None]:
    """node address -> what its probe saw ("" when it reads the marker), None if no answer."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(sees)
    refs = {
        n["NodeManagerAddress"] + f" (node {n['NodeID'][:8]})": probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(marker, token)
        for n in nodes
    }
    ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
    answers: dict[str, str | None] = {}
    for name, ref in refs.items():
        try:
            answers[name] = ray.get(ref, timeout=0)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError):
            ray.cancel(ref, force=True)
            answers[name] = None
    return answers


def _remove(marker: str) -> None:
    from pyarrow import fs

    filesystem, where = fs.FileSystem.from_uri(marker)
    with contextlib.suppress(OSError):  # gone already, or a store that refuses: harmless
        filesystem.delete_file(where)


def check_shared(storage: str, want: dict[str, float], given: str | None) -> None:
    """Refuse (UsageError) a study whose storage root some trial node cannot read. ``storage``
    is the root (an absolute path or a URI), ``want`` one trial's resources, ``given`` the
    ``--storage-path`` (or study directory) the user named (None: the default root)."""
    nodes = trial_nodes(want)
    if not nodes:
        return
    token = secrets.token_hex(8)
    base = storage if "://" in storage else f"file://{storage}"
    marker = f"{base.rstrip('/')}/{MARKER}{token}"
    write_text(marker, token)
    try:
        answers = ask_nodes(nodes, marker, token)
    finally:
        _remove(marker)
    for name, seen in answers.items():
        if seen is None:
            print(
                f"warning: could not ask trial node {name} whether it reads {storage!r}"
                f" (no answer in {PROBE_TIMEOUT_S:.0f} s)",
                file=sys.stderr,
            )
    blind = {name: seen for name, seen in answers.items() if seen}
    if not blind:
        return
    origin = (
        ""
        if given
        else " (no --storage-path given: the default, LORA_HPO_STORAGE or ./lora-hpo-results)"
    )
    seen_text = "; ".join(f"{name}: {seen}" for name, seen in sorted(blind.items()))
    raise UsageError(
        f"--storage-path: {len(blind)} of {len(nodes)} trial nodes cannot read {storage!r}"
        f"{origin}, where this study keeps its results, checkpoints and state ({seen_text})."
        f" On a cluster every node that runs trials must read it: {ADVICE}"
    )
