"""One driver per study. ``lora-hpo run`` and ``resume`` hold the study directory's driver file
(``lora_hpo_driver.json``) from before Ray starts until the driver ends; a second driver on
the same study is refused, with who holds it and what to do.

- A local (or shared-mount) directory: an exclusive ``flock`` on the file, which names its
  owner. The kernel releases it however the driver ends, ``kill -9`` included.
- A URI (``s3://...``), where no lock exists: a lease object naming its owner, whose heartbeat
  a background thread rewrites every ``heartbeat_s``. Another driver watches a lease: once its
  heartbeat moves, its holder is alive and the driver is refused; a lease not rewritten for
  ``stale_s`` (by its heartbeat time, or as the watcher sees it: clocks may differ) is stale,
  and the watcher takes it, saying so. So ``resume`` right after a driver was killed waits at
  most ``STALE_S``, and a live holder is told within about ``HEARTBEAT_S``. Object stores give
  no compare-and-swap, so a taker reads the lease back after ``SETTLE_S``: of two drivers that
  take it at once, the last writer wins and the other goes on watching. A driver whose lease
  was taken (its heartbeats failed for ``stale_s``) stops its study as SIGTERM would.

A retried job (``run --resume-if-exists``: KubeRay after the head pod died) also waits up to
``RETRY_WAIT_S`` for a live-looking hold to free: an flock on a network file system is released
only when the server drops the dead client (NFSv4: about 90 s). A holder still alive after
that keeps its hold, and the retry is refused (exit 2).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from lora_hpo.spec.spec_errors import UsageError

DRIVER_FILE = "lora_hpo_driver.json"  # in the study directory
HEARTBEAT_S = 5.0  # how often a lease's heartbeat is rewritten
STALE_S = 30.0  # a lease not rewritten for this long is taken for dead
RETRY_WAIT_S = 120.0  # how long a retried job waits for a dead driver's hold to free
SETTLE_S = 1.0  # a taken lease is read back after this long (the other taker's write lands)
POLL_S = 0.5
READS = 5  # attempts at a lease that does not parse before it counts as none
Say = Callable[[str], None]


def _owner(token: str) -> dict[str, Any]:
    now = time.time()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": started,
            "heartbeat": now, "token": token}  # fmt: skip


def describe(owner: dict[str, Any] | None, now: float | None = None) -> str:
    """Who holds a study, in words."""
    if not owner:
        return "another driver (it has not written its name yet)"
    text = f"host {owner.get('host')!r}, pid {owner.get('pid')}, since {owner.get('started')}"
    if "heartbeat" in owner and now is not None:
        text += f", last heartbeat {now - float(owner['heartbeat']):.0f} s ago"
    return text


def _busy(name: str, directory: str, where: str, owner: dict[str, Any] | None, lease: bool) -> str:
    held = describe(owner, time.time() if lease else None)
    frees = (
        f"a dead driver's lease goes stale {STALE_S:.0f} s after its last heartbeat, and the"
        " next run or resume takes it"
        if lease
        else "the lock frees itself when that driver's process ends, however it ends"
    )
    return (
        f"study {name!r} in {directory!r} is already being run by another driver ({held};"
        f" {where}). Wait for it to finish, or stop it (`lora-hpo stop` for a submitted job,"
        f" Ctrl+C or `kill <pid>` where it runs), then continue with `lora-hpo resume`;"
        f" {frees}."
    )


def _waiting(
    name: str, where: str, owner: dict[str, Any] | None, lease: bool, wait_s: float
) -> str:
    held = f"study {name!r} is held by {describe(owner, time.time() if lease else None)} ({where})"
    if not lease:
        return f"{held}: waiting up to {wait_s:.0f} s for it to free"
    return (
        f"{held}: waiting to see whether that driver is alive (a live one renews its lease"
        f" every {HEARTBEAT_S:.0f} s; a dead one's goes stale {STALE_S:.0f} s after its last"
        " heartbeat, and is then taken)"
    )


class FileLock:
    """An exclusive flock on the driver file of a local study directory."""

    renewed = True  # a lock that is held has a live holder: the kernel frees a dead one's

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / DRIVER_FILE
        self.handle: IO[str] | None = None
        self.made = False  # this driver made the study directory

    def try_take(self) -> bool:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.made = True
        handle = open(self.path, "a+")  # noqa: SIM115  (held for the driver's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(json.dumps(_owner(uuid.uuid4().hex)))
        handle.flush()
        self.handle = handle
        return True

    def holder(self) -> dict[str, Any] | None:
        try:
            found = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def release(self) -> None:
        if self.handle is None:
            return
        self.handle.truncate(0)  # still locked: no one reads a departed owner
        if self.made and [p.name for p in self.path.parent.iterdir()] == [DRIVER_FILE]:
            with contextlib.suppress(OSError):  # the study never started: leave no trace
                self.path.unlink()
                self.path.parent.rmdir()
        self.handle.close()
        self.handle = None


class Lease:
    """A lease object in a study directory on a URI, kept fresh by a heartbeat thread."""

    def __init__(self, directory: str, heartbeat_s: float, stale_s: float, say: Say) -> None:
        from pyarrow import fs

        self.fs, where = fs.FileSystem.from_uri(directory)
        self.path, self.heartbeat_s, self.stale_s, self.say = (
            f"{where.rstrip('/')}/{DRIVER_FILE}", heartbeat_s, stale_s, say,
        )  # fmt: skip
        self.mine = _owner(uuid.uuid4().hex)
        self.seen: tuple[Any, float] | None = None  # (the holder's heartbeat, when first seen)
        self.renewed = False  # whether the holder's heartbeat moved while this one watched
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        """The lease's owner; None when there is no lease. A lease that does not parse is read
        again (a store without atomic replaces can serve one mid-write): taking a live
        driver's lease for absent would stop that driver."""
        for attempt in range(READS):
            try:
                with self.fs.open_input_stream(self.path) as src:
                    found = json.loads(bytes(src.read()).decode() or "null")
            except FileNotFoundError:
                return None
            except ValueError:
                if attempt == READS - 1:
                    return None  # written by no driver: nobody renews it either
                time.sleep(POLL_S / 5)  # the pause before reading the lease again
                continue
            return found if isinstance(found, dict) else None
        return None

    def _write(self) -> None:
        self.mine["heartbeat"] = time.time()
        with self.fs.open_output_stream(self.path) as out:
            out.write(json.dumps(self.mine).encode())

    def stale(self, held: dict[str, Any]) -> bool:
        """By its heartbeat time, or (clocks may differ) unchanged for stale_s as seen here."""
        beat, now = (held.get("token"), held.get("heartbeat")), time.monotonic()
        if self.seen is None or self.seen[0] != beat:
            self.renewed = self.seen is not None and self.seen[0][0] == beat[0]
            self.seen = (beat, now)
        old = time.time() - float(beat[1] or 0) > self.stale_s
        return old or now - self.seen[1] > self.stale_s

    def try_take(self) -> bool:
        held = self.holder()
        if held is not None and held.get("token") != self.mine["token"]:
            if not self.stale(held):
                return False
            self.say(f"taking the stale lease of {describe(held, time.time())} on {self.path}")
        self._write()
        time.sleep(SETTLE_S)  # another taker's write, if any, lands before the read-back
        if (self.holder() or {}).get("token") != self.mine["token"]:
            return False
        self._thread = threading.Thread(target=self._beat, name="lora-hpo-lease", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        failing = False
        while not self._stop.wait(self.heartbeat_s):
            try:
                held = self.holder()
                if held is not None and held.get("token") != self.mine["token"]:
                    self.say(f"lost the study's lease on {self.path} to {describe(held)}; stopping")
                    import _thread

                    _thread.interrupt_main(signal.SIGTERM)  # a graceful stop, as SIGTERM
                    return
                self._write()
                failing = False
            except OSError as exc:
                if not failing:
                    self.say(f"could not renew the study's lease on {self.path}: {exc}")
                failing = True

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
            with contextlib.suppress(OSError):
                if (self.holder() or {}).get("token") == self.mine["token"]:
                    self.fs.delete_file(self.path)


@contextlib.contextmanager
def hold_study(
    directory: str,
    name: str,
    *,
    wait_s: float = 0.0,
    say: Say = print,
    heartbeat_s: float = HEARTBEAT_S,
    stale_s: float = STALE_S,
) -> Iterator[None]:
    """Hold the study in ``directory`` for the block; UsageError when another live driver
    holds it. A lease whose holder has not renewed it yet is watched until it is (the holder
    is alive) or goes stale (it is taken). ``wait_s``: how long to wait for a live holder's
    hold to free (a retried job)."""
    lease = "://" in directory
    lock = Lease(directory, heartbeat_s, stale_s, say) if lease else FileLock(directory)
    deadline, told = time.monotonic() + wait_s, False
    while not lock.try_take():
        if lock.renewed and time.monotonic() >= deadline:
            raise UsageError(_busy(name, directory, str(lock.path), lock.holder(), lease))
        if not told:
            say(_waiting(name, str(lock.path), lock.holder(), lease, wait_s))
            told = True
        time.sleep(POLL_S)
    try:
        yield
    finally:
        lock.release()
