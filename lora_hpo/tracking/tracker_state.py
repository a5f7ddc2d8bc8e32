"""The tracker's state file, kept in the study directory. Saving it is what every tracking
record does, on Tune's driver thread, so a save must never touch the network: for a study on
a URI (``s3://...``) the save writes a local mirror only (``files.small_files.local_mirror``),
and the outbox's sender thread uploads the latest state at most every few seconds and when it
stops.
Loading reads both copies and keeps the newer one (by the state's record sequence number),
so a resume on another machine or from another working directory finds the study's state.
A copy that exists but does not parse (truncated, garbage) is never taken for "no state": that
would mint a new study key, leave the old runs RUNNING and duplicate them. With a good copy
beside it, the good one is used (and the user told); else it is a ``StateFileError``."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from shlex import quote
from typing import Any, TextIO

from lora_hpo.files.file_names import TRACKER_STATE
from lora_hpo.files.small_files import local_mirror, read_text, write_text
from lora_hpo.spec.spec_errors import UsageError

SYNC_EVERY_S = 5.0


class StateFileError(UsageError):
    """The tracker state file exists but does not parse: the study must not start (exit 2)."""


def check_state(directory: str) -> None:
    """Fail fast (before Ray starts) when the tracker state of the study in ``directory``
    exists but does not parse; say nothing else (the tracker reports a copy it skipped).
    A storage that cannot be read now is left to the study's own start to report."""
    try:
        StateFile(directory).load(io.StringIO())
    except OSError:
        return


class StateFile:
    """The tracker state as JSON: ``path`` in the study directory (a local path or a URI)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = f"{directory.rstrip('/')}/{TRACKER_STATE}"
        self.remote = "://" in self.path
        self.local = str(local_mirror(self.path)) if self.remote else self.path
        self._dirty = False
        self._synced = 0.0
        self._lock = threading.Lock()  # one upload at a time

    def load(self, stream: TextIO | None = None) -> dict[str, Any] | None:
        """The newer of the study directory's copy and this machine's mirror (None when
        neither exists). A copy that does not parse is skipped, and the user told (on
        ``stream``, else stderr), when the other one parses; when none parses,
        ``StateFileError``."""
        where = [self.path, self.local] if self.remote else [self.path]
        good: list[dict[str, Any]] = []
        bad: dict[str, str] = {}
        for path in where:
            try:
                text = read_text(path)  # bytes that are not UTF-8: a ValueError too
                if text is not None:
                    good.append(_parse(text))
            except ValueError as exc:
                bad[path] = str(exc)
        if bad and not good:
            raise StateFileError(self._corrupt(bad))
        for path, why in bad.items():
            kept = next(p for p in where if p not in bad)
            told = f"the tracker state {path} does not parse ({why}); using the copy at {kept}"
            print(f"lora-hpo: {told}", file=stream or sys.stderr, flush=True)
        return max(good, key=lambda s: int(s.get("seq", 0))) if good else None

    def _corrupt(self, bad: dict[str, str]) -> str:
        """What is wrong, and the ways out, naming the file(s)."""
        paths = " and ".join(bad)
        why = "; ".join(f"{p}: {w}" for p, w in bad.items())
        moves = "; ".join(
            f"move {p} to {p}.corrupt" if "://" in p else f"mv {quote(p)} {quote(p + '.corrupt')}"
            for p in bad
        )
        return (
            f"the MLflow tracker state {paths} exists but does not parse ({why}). It maps this"
            " study's trials to their MLflow runs and holds records not yet sent, so the study"
            " will not start over it. Restore it from a backup of the study's storage, or move"
            f" it aside ({moves}): the study then starts fresh tracking records in a new"
            " study run, and its earlier MLflow runs are left as they are"
        )

    def save(self, state: dict[str, Any]) -> None:
        """A local write (the mirror, for a URI); the upload happens in ``sync``."""
        write_text(self.local, json.dumps(state, indent=1, sort_keys=True))
        self._dirty = self.remote

    def sync(self, force: bool = False) -> None:
        """Upload the mirror to the study directory when it changed (sender thread only)."""
        if not self._dirty or (not force and time.monotonic() - self._synced < SYNC_EVERY_S):
            return
        with self._lock:
            self._dirty, self._synced = False, time.monotonic()
            text = read_text(self.local)
            if text is not None:
                write_text(self.path, text)


def _parse(text: str) -> dict[str, Any]:
    """A state as saved: a JSON object whose ``trials`` is an object and ``queue`` a list.
    ValueError (naming what is wrong) otherwise."""
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc} in {len(text)} characters") from None
    if not isinstance(state, dict):
        raise ValueError(f"a JSON {type(state).__name__}, not an object")
    for key, kind in (("trials", dict), ("queue", list)):
        if key in state and not isinstance(state[key], kind):
            raise ValueError(f"{key!r} is a JSON {type(state[key]).__name__}")
    return state


def new_state(study: str, experiment: str, tracking_uri: str, directory: str) -> dict[str, Any]:
    """A fresh study's tracker state: a new study key, no runs yet, nothing queued."""
    import uuid

    return {
        "version": 1,
        "study_key": uuid.uuid4().hex,
        "study": study,
        "experiment": experiment,
        "tracking_uri": tracking_uri,
        "study_dir": directory,
        "experiment_id": None,
        "parent_run_id": None,
        "finished": False,
        "trials": {},
        "champion": None,
        "queue": [],
        "seq": 0,
    }
