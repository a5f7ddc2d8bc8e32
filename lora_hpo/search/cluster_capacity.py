"""Capacity on a cluster the study joins: one trial must fit one node. On a cluster lora-hpo
joined (``--address``, RAY_ADDRESS, the cluster a submitted job runs on) that cannot run a
trial now, the study asks the autoscaler for it (``ray.autoscaler.sdk.request_resources``)
and waits, with one live line, up to ``--wait-for-resources``; a local Ray cannot grow, so
there a trial that does not fit fails at once."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import StudySpec

DEFAULT_WAIT_S = 15 * 60.0
POLL_S = 2.0
_REQUEST = {"open": False}  # this process asked the autoscaler for resources
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, flag: str = "--wait-for-resources") -> float:
    """``90``, ``90s``, ``15m``, ``1h`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match:
        raise UsageError(f"{flag}: must be a duration like 90s, 15m or 1h, but got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def bundle(spec: StudySpec) -> dict[str, float]:
    """What one trial asks of one node."""
    out = {"CPU": float(spec.resources.cpu)}
    if spec.resources.gpu > 0:
        out["GPU"] = float(spec.resources.gpu)
    return out


def node_fits(nodes: list[dict[str, Any]], want: dict[str, float]) -> bool:
    """Whether some alive node has at least ``want`` of every resource (in total)."""
    return any(
        n.get("Alive") and all(n.get("Resources", {}).get(k, 0) >= v for k, v in want.items())
        for n in nodes
    )


def shortfall(want: dict[str, float], free: dict[str, float]) -> str:
    """ "1 GPU and 4 CPU (0 free)" for the words of the wait line and the error."""
    parts = [f"{v:g} {k}" for k, v in sorted(want.items(), key=lambda kv: kv[0] != "GPU")]
    kind = "GPU" if "GPU" in want else "CPU"
    return f"{' and '.join(parts)} ({free.get(kind, 0):g} {kind} free)"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class WaitLine:
    """One live line on a terminal (rewritten in place); a line every 30 s elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._last = -30.0

    def show(self, text: str, elapsed: float) -> None:
        if self.live:
            self.stream.write(f"\r{text} {_clock(elapsed)}\x1b[K")
        elif elapsed - self._last >= 30:
            self._last = elapsed
            self.stream.write(f"{text} {_clock(elapsed)}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def wait_for_capacity(
    spec: StudySpec,
    wait_s: float,
    *,
    view: WaitLine | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Ask the autoscaler for one trial's resources and wait until a node can run it; the
    seconds waited. UsageError (exit 2) after ``wait_s``."""
    import ray
    from ray.autoscaler.sdk import request_resources

    want, start = bundle(spec), clock()
    if node_fits(ray.nodes(), want):
        return 0.0
    request_resources(bundles=[want])
    _REQUEST["open"] = True
    view = view or WaitLine()
    try:
        while not node_fits(ray.nodes(), want):
            elapsed = clock() - start
            if elapsed >= wait_s:
                raise UsageError(
                    f"resources: waited {_clock(elapsed)} for a node that can run one trial,"
                    f" {shortfall(want, ray.available_resources())}; the cluster has"
                    f" {ray.cluster_resources()}. Is its autoscaler running, and are its worker"
                    " groups big enough? (--wait-for-resources waits longer)"
                )
            view.show(
                f"waiting for {shortfall(want, ray.available_resources())}; asked the autoscaler",
                elapsed,
            )
            time.sleep(POLL_S)
    finally:
        view.done()
    return clock() - start


def release() -> None:
    """Withdraw this process's resource request (the trials' own demand drives scaling)."""
    if _REQUEST["open"]:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=[])
        _REQUEST["open"] = False
