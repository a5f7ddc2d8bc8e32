"""The tracker's durable outbox: a FIFO of tracking records kept in a small JSON state file
(rewritten atomically after every change) and sent to MLflow by ONE background thread.

Tune callbacks only append here, so training never waits on MLflow. When the server cannot be
reached, records stay queued (in memory and on disk) and the user is told once; when it is
back, they are sent in order, and the user is told once again.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

STATE_FILE = "lora_hpo_mlflow.json"
RETRIES = 5  # attempts for a server-side error before a record is dropped


class StateFile:
    """The tracker state as JSON in a local directory (write + rename) or on a URI."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = f"{directory.rstrip('/')}/{STATE_FILE}"

    def load(self) -> dict[str, Any] | None:
        try:
            if "://" not in self.path:
                return dict(json.loads(Path(self.path).read_text()))
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(self.path)
            with filesystem.open_input_stream(path) as src:
                return dict(json.loads(src.read()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        except OSError as exc:  # pyarrow reports a missing remote file as OSError
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise

    def save(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=1, sort_keys=True)
        if "://" in self.path:
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(self.path)
            with filesystem.open_output_stream(path) as out:  # object stores replace atomically
                out.write(text.encode())
            return
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


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
        self.stats = {"sent": 0, "dropped": 0, "outages": 0, "max_queued": 0, "down_s": 0.0}
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
        with self.lock:
            self.file.save(self.state)

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

    def close(self) -> None:
        with self.lock:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.state["queue"] and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                head = dict(self.state["queue"][0])
            self._attempt(head)

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
                    f"MLflow tracking server {self.where} is unreachable ({_short(exc)}); "
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
