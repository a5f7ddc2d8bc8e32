"""The tracker's durable outbox: a FIFO of tracking records kept in a small JSON state file
(rewritten after every change, locally: ``tracker_state.py``) and sent to MLflow by ONE
background thread, which also uploads the state when the study lives on a URI.

Tune callbacks only append here, so training never waits on MLflow. When the server cannot be
reached, records stay queued (in memory and on disk) and the user is told once; when it is
back, they are sent in order, and the user is told once again. When the state file cannot be
written (a full disk), the study goes on with the records in memory, the user is told once, and
the next save that succeeds writes them all.
"""

from __future__ import annotations

import errno
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from lora_hpo.tracking.tracker_state import SYNC_EVERY_S, StateFile

RETRIES = 5  # attempts for a server-side error before a record is dropped


Sender = Callable[[dict[str, Any]], None]
Classifier = Callable[[BaseException], str]


class Outbox:
    """``put`` appends a record to ``state["queue"]`` and saves; the sender thread sends the
    head with ``send`` and removes it once MLflow has it. ``lock`` guards ``state``."""

    def __init__(
        self,
        state: dict[str, Any],
        file: StateFile,
        send: Sender,
        classify: Classifier,
        where: str,
        stream: TextIO | None = None,
        retry_s: float = 2.0,
        lock: threading.RLock | None = None,
    ) -> None:
        self.state, self.file, self.send, self.classify = state, file, send, classify
        self.where, self.stream, self.retry_s = where, stream or sys.stderr, retry_s
        self.lock = lock or threading.RLock()
        self._wake = threading.Condition(self.lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.down_since: float | None = None
        self.unsaved: OSError | None = None  # why the last save failed; None once one succeeds
        self.stats = {"sent": 0, "dropped": 0, "outages": 0, "max_queued": 0, "down_s": 0.0}
        self.stats["failed_saves"] = 0
        self.state.setdefault("queue", [])
        self.state.setdefault("seq", 0)

    @property
    def queue(self) -> list[dict[str, Any]]:
        return list(self.state["queue"])

    def put(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.state["seq"] += 1
            self.state["queue"].append({**record, "seq": self.state["seq"]})
            self.stats["max_queued"] = max(self.stats["max_queued"], len(self.state["queue"]))
            self.save()
            self._wake.notify_all()

    def save(self) -> None:
        """Write the state file. A write that fails (a full disk) must not end the study (this
        runs in Tune's callbacks): the state stays in memory, the user is told once, and the
        next save (the next record, a send, or the sender's idle loop) writes everything."""
        with self.lock:
            try:
                self.file.save(self.state)
            except OSError as exc:
                self.stats["failed_saves"] += 1
                if self.unsaved is None:
                    self.unsaved = exc
                    self.say(self._unsaved_line(exc))
                return
            if self.unsaved is not None:
                self.unsaved = None
                self.say(f"the tracker state is written to {self.file.local} again")

    def _unsaved_line(self, exc: OSError) -> str:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        until = "space returns on that disk" if full else "the file can be written again"
        return (
            f"could not write the tracker state to {self.file.local} ({_short(exc)}); the study"
            f" goes on, and its {len(self.state['queue'])} queued tracking record(s) and its"
            f" trial-to-run map are kept in memory until {until}, then written there"
        )

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lora-hpo-mlflow", daemon=True)
            self._thread.start()

    def flush(self, timeout_s: float) -> int:
        """Wait until every record is sent (or ``timeout_s`` passes); the number left."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self.state["queue"] and time.monotonic() < deadline:
                self._wake.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            return len(self.state["queue"])

    def drain(self, timeout_s: float) -> None:
        """Wait (up to ``timeout_s``) until MLflow has every record, saying so when it takes
        more than a few seconds; then stop the sender. What is left stays in the state file."""
        left = self.flush(min(5.0, timeout_s))
        if left:
            self.say(
                f"sending {left} queued tracking record(s) to MLflow {self.where}"
                f" (waiting up to {timeout_s:.0f} s)"
            )
            left = self.flush(max(0.0, timeout_s - 5.0))
        self.close()
        if self.unsaved is not None:
            self.save()
        if self.unsaved is not None:
            lost = f"; the {left} tracking record(s) not sent to MLflow are lost" if left else ""
            self.say(
                f"the tracker state could not be written to {self.file.local} before the end"
                f" ({_short(self.unsaved)}); it holds what an earlier save wrote{lost}"
            )
        elif left:
            self.say(
                f"{left} tracking record(s) were not sent; they stay in {self.file.path}"
                " and are sent by the next `lora-hpo resume` of this study"
            )

    def close(self) -> None:
        with self.lock:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        else:
            self._sync(force=True)

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.state["queue"] and not self._stop:
                    self._wake.wait(SYNC_EVERY_S)
                if self._stop:
                    break
                head = dict(self.state["queue"][0]) if self.state["queue"] else None
            if head is not None:
                self._attempt(head)
            if self.unsaved is not None:  # a full disk: try again, though nothing changed
                self.save()
            self._sync()
        self._sync(force=True)

    def _sync(self, force: bool = False) -> None:
        """Upload the state file when it lives on a URI (this thread, never Tune's)."""
        try:
            self.file.sync(force)
        except OSError as exc:  # the storage is unreachable for now: the next sync retries
            self.say(f"could not save the tracker state to {self.file.path}: {_short(exc)}")

    def _attempt(self, head: dict[str, Any]) -> None:
        try:
            self.send(head)
        except Exception as exc:
            kind = self.classify(exc)
            head_tries = int(head.get("tries", 0)) + 1
            if kind == "down" or (kind == "retry" and head_tries < RETRIES):
                self._failed(exc, kind, head_tries)
                return
            self.say(
                f"a tracking record was rejected and skipped ({describe(head)}): {_short(exc)}"
            )
            self.stats["dropped"] += 1
        else:
            self.stats["sent"] += 1
            self._back()
        self._pop(head["seq"])

    def _pop(self, seq: int) -> None:
        with self.lock:
            self.state["queue"] = [r for r in self.state["queue"] if r["seq"] != seq]
            self.save()
            self._wake.notify_all()

    def _failed(self, exc: BaseException, kind: str, tries: int) -> None:
        with self.lock:
            if kind == "retry" and self.state["queue"]:
                self.state["queue"][0]["tries"] = tries
            if kind == "down" and self.down_since is None:
                self.down_since = time.monotonic()
                self.stats["outages"] += 1
                n = len(self.state["queue"])
                self.say(
                    f"MLflow tracking server {self.where} is unreachable or failing"
                    f" ({_short(exc)}); "
                    f"training goes on, {n} tracking record(s) are queued in {self.file.path} "
                    "and will be sent when it returns"
                )
            self._wake.wait(self.retry_s if not self._stop else 0)

    def _back(self) -> None:
        if self.down_since is None:
            return
        down = time.monotonic() - self.down_since
        self.down_since = None
        self.stats["down_s"] += down
        with self.lock:
            n = len(self.state["queue"])
        self.say(
            f"MLflow tracking server {self.where} is back after {down:.0f} s;"
            f" sending {n} queued record(s)"
        )

    def say(self, line: str) -> None:
        self.stream.write(f"lora-hpo: {line}\n")
        self.stream.flush()


def describe(record: dict[str, Any]) -> str:
    who = f"trial {record['trial']}" if record.get("trial") else "study run"
    return f"{record.get('op')} of {who}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for marker in ("Caused by ", "failed with exception "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return f"{type(exc).__name__}: {text[:160]}"
