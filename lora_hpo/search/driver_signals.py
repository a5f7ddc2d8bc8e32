"""SIGTERM (pod eviction, ``lora-hpo stop``) and SIGINT (Ctrl+C) stop a study gracefully.

Ray Tune's ``fit`` installs a SIGINT handler that ends the run gracefully: the loop stops, the
experiment state is saved one last time, the trials are stopped and the callbacks get their
experiment end (a second SIGINT skips that). SIGTERM takes the same path: while a study runs,
the driver's SIGTERM handler calls the SIGINT handler of the moment (``ray.init`` installs a
SIGTERM handler that just exits, which this one replaces). Outside ``fit`` (Ray starting, the
preflight) either signal raises ``Interrupted`` at once.

Tune marks the trials it stops TERMINATED, as if they had finished; ``StopOnSignal``, the
study's first callback, notes the signal as it comes (it wraps Tune's handler at the
experiment's setup), so that the trackers end their runs as interrupted (``interrupted``),
and the runner raises ``Interrupted`` once ``fit`` returns. The CLI exits 128 + the signal.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback


class Interrupted(KeyboardInterrupt):
    """The driver was stopped by ``signum``; ``where``: the study directory to resume."""

    def __init__(self, signum: int, where: str = "") -> None:
        super().__init__(signum, where)
        self.signum, self.where = signum, where

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_FITTING = threading.Event()  # a study's ``fit`` runs: its SIGINT handler is Tune's, wrapped


def _on_sigterm(signum: int, frame: Any) -> None:
    handler = signal.getsignal(signal.SIGINT)
    # outside a study's fit, a SIGINT handler may be one that an earlier Tune run left behind
    if not _FITTING.is_set() or not callable(handler) or handler is signal.default_int_handler:
        raise Interrupted(signum)
    handler(signum, frame)  # Tune's graceful stop (noted by StopOnSignal), or the caller's


@contextmanager
def sigterm_stops_gracefully() -> Iterator[None]:
    """For the block (on the main thread; elsewhere nothing changes), SIGTERM stops the study
    as SIGINT does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class StopOnSignal(Callback):  # type: ignore[misc]
    """The study's first Tune callback: notes a stop signal during ``fit`` and tells the other
    callbacks (those with an ``interrupted`` attribute) before their experiment end."""

    def __init__(self, others: list[Any]) -> None:
        self.others = others
        self.signum: int | None = None

    def setup(self, *args: Any, **info: Any) -> None:
        """Called once ``fit`` has installed Tune's SIGINT handler: wrap it."""
        if threading.current_thread() is not threading.main_thread():
            return
        tune_handler = signal.getsignal(signal.SIGINT)
        if not callable(tune_handler) or tune_handler is signal.default_int_handler:
            return  # TUNE_DISABLE_SIGINT_HANDLER: Ctrl+C interrupts at once

        def noted(signum: int, frame: Any) -> None:
            self.note(signum)
            tune_handler(signum, frame)

        signal.signal(signal.SIGINT, noted)

    def note(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            name = signal.Signals(signum).name
            os.write(2, f"lora-hpo: {name}: stopping the study; its state is saved, then the"
                     f" driver exits ({name} again: at once)\n".encode())  # fmt: skip
            for callback in self.others:
                if hasattr(callback, "interrupted"):
                    callback.interrupted = True

    @contextmanager
    def fitting(self) -> Iterator[None]:
        """Around ``fit``: the SIGINT and SIGUSR1 handlers as they were before (Tune leaves its
        own installed when ``fit`` returns)."""
        main = threading.current_thread() is threading.main_thread()
        sigs = (signal.SIGINT, signal.SIGUSR1) if main else ()
        saved = {s: signal.getsignal(s) for s in sigs}
        _FITTING.set()
        try:
            yield
        finally:
            _FITTING.clear()
            for s, handler in saved.items():
                signal.signal(s, handler)
