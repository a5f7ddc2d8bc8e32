"""Failed trials, explained: each failure's signature (the exception type and the first line of
its message), a summary of the distinct failures with their counts and where the full error
is, and a watch that ends a study whose first trial attempts all fail the same way (instead of
burning num_samples x max_failures attempts). The watch ends the run the way a killed driver
does, so ``lora-hpo resume`` continues the study once the cause is fixed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback

PATIENCE = 3  # the first attempts that must all fail, the same way, before the study stops
# Ray's words when a trial's node cannot see the storage path (at the trial's first checkpoint)
STORAGE_ERROR = "Unable to set up cluster storage"
ERROR_FILE = "error.txt"  # where Tune writes a failed trial's full error, in its directory


@dataclass(frozen=True)
class Failure:
    """One kind of failure: how many trials (or attempts) ended so, and one full error."""

    kind: str
    message: str
    count: int
    error_file: str

    def line(self) -> str:
        times = f"{self.count} trial{'s' if self.count != 1 else ''}"
        return f"{times}: {self.kind}: {self.message} (full error: {self.error_file})"


def signature(exc: BaseException) -> tuple[str, str]:
    """(type name, first line of the message) of the exception a trial raised."""
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the trial's own
    lines = [x.strip() for x in str(cause).splitlines() if x.strip()]
    return type(cause).__name__, (lines[0] if lines else "")[:300]


def trial_error(trial: Any) -> tuple[str, str] | None:
    """The signature of a Tune trial's last error, from the files Tune wrote for it."""
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and Path(pickled).is_file():
        import cloudpickle

        try:
            with open(pickled, "rb") as fh:
                return signature(cloudpickle.load(fh))
        except Exception:  # an error that cannot be unpickled here: read the text instead
            pass
    text = getattr(trial, "error_file", None)
    if text and Path(text).is_file():
        lines = [x.strip() for x in Path(text).read_text().splitlines() if x.strip()]
        kind, _, message = (lines[-1] if lines else "").partition(": ")
        return kind or "Error", message
    return None


def error_path(trial: Any) -> str:
    """Where the trial's full error is: in the study directory once Tune has synced it there,
    else the driver's local copy."""
    local = str(getattr(trial, "error_file", "") or "")
    stored = f"{getattr(trial, 'path', '') or ''}/{ERROR_FILE}"
    return stored if Path(stored).is_file() or not local else local


def summarize_failures(errors: list[tuple[tuple[str, str], str]]) -> list[Failure]:
    """Distinct failures, most frequent first, from (signature, error file) pairs."""
    counts = Counter(sig for sig, _ in errors)
    first: dict[tuple[str, str], str] = {}
    for sig, path in errors:
        first.setdefault(sig, path)
    return [Failure(k, m, n, first[(k, m)]) for (k, m), n in counts.most_common()]


class StudyFailing(RuntimeError):
    """Raised by the watch inside Tune's loop: the study's first attempts all failed alike."""


class FailureWatch(Callback):  # type: ignore[misc]
    """Ends the study when its first ``patience`` trial attempts fail with one signature and no
    trial has reported a result yet; and at once when a trial's node cannot see the storage
    path (a node that joined after the study's own check, ``shared_storage``): every attempt
    there would fail alike. ``bad_input`` is then set: the study's input must change."""

    def __init__(self, patience: int = PATIENCE, storage: str = "") -> None:
        self.patience, self.storage = patience, storage
        self.errors: list[tuple[tuple[str, str], str]] = []
        self.reported = False
        self.reason: str = ""
        self.bad_input = False

    def on_trial_result(
        self, iteration: int, trials: Any, trial: Any, result: Any, **_: Any
    ) -> None:
        self.reported = True

    def on_trial_recover(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._failed(trial)

    def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._failed(trial)

    def _failed(self, trial: Any) -> None:
        sig = trial_error(trial) or ("Error", "no error file")
        self.errors.append((sig, error_path(trial)))
        if sig[1].startswith(STORAGE_ERROR):
            from lora_hpo.search.shared_storage import ADVICE

            self.bad_input = True
            self.reason = (
                f"--storage-path: a trial node cannot read {self.storage or 'the storage path'!r}"
                f" (Ray: {sig[1]}); on a cluster every node that runs trials must read it:"
                f" {ADVICE}"
            )
            raise StudyFailing(self.reason)
        same = {s for s, _ in self.errors}
        if not self.reported and len(self.errors) >= self.patience and len(same) == 1:
            kind, message = sig
            self.reason = (
                f"stopped: the first {len(self.errors)} trial attempts all failed with"
                f" {kind}: {message}"
            )
            raise StudyFailing(self.reason)
