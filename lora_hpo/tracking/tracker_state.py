"""The tracker's state file, kept in the study directory. Saving it is what every tracking
record does, on Tune's driver thread, so a save must never touch the network: for a study on
a URI (``s3://...``) the save writes a local mirror only (``files.small_files.local_mirror``),
and the outbox's sender thread uploads the latest state at most every few seconds and when it
stops.
Loading reads both copies and keeps the newer one (by the state's record sequence number),
so a resume on another machine or from another working directory finds the study's state."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from lora_hpo.files.file_names import TRACKER_STATE
from lora_hpo.files.small_files import local_mirror, read_text, write_text

SYNC_EVERY_S = 5.0


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

    def _parse(self, text: str | None) -> dict[str, Any] | None:
        try:
            return None if text is None else dict(json.loads(text))
        except json.JSONDecodeError:
            return None

    def load(self) -> dict[str, Any] | None:
        """The newer of the study directory's copy and this machine's mirror."""
        found = [self._parse(read_text(self.path))]
        if self.remote:
            found.append(self._parse(read_text(self.local)))
        states = [s for s in found if s is not None]
        return max(states, key=lambda s: int(s.get("seq", 0))) if states else None

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
