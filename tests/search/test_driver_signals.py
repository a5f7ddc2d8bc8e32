"""SIGTERM outside a study's ``fit`` raises ``Interrupted`` at once, even when an earlier Tune
run in the same process left its SIGINT handler installed (it used to call that stale handler,
which stopped nothing: a driver whose lease was taken then ran on)."""

from __future__ import annotations

import os
import signal

import pytest

from lora_hpo.search.driver_signals import Interrupted, sigterm_stops_gracefully


def test_sigterm_outside_fit_is_not_swallowed_by_a_stale_sigint_handler() -> None:
    swallowed: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: swallowed.append(signum))
    try:
        with pytest.raises(Interrupted) as got, sigterm_stops_gracefully():
            os.kill(os.getpid(), signal.SIGTERM)  # handled on this thread before the next line
            pytest.fail("SIGTERM did not stop the block")
    finally:
        signal.signal(signal.SIGINT, before)
    assert got.value.signum == signal.SIGTERM and got.value.exit_code == 143
    assert not swallowed
