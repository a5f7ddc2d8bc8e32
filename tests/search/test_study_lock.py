"""One driver per study (``study_lock``): the flock of a local study directory, and the lease
of a study on S3 against a real S3-compatible server (moto's, through pyarrow's S3
filesystem as Ray uses it): refused while held, freed by a killed holder, a stale lease
taken, a live one kept, a holder whose lease is taken stopped. No Ray; a few seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lora_hpo.search.driver_signals import Interrupted, sigterm_stops_gracefully
from lora_hpo.search.study_lock import DRIVER_FILE, STALE_S, hold_study
from lora_hpo.spec.spec_errors import UsageError
from tests.s3_server import BUCKET, S3, running

HOLD = (
    "import sys; from lora_hpo.search.study_lock import hold_study\n"
    "with hold_study(sys.argv[1], 'tiny'):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)


def test_a_second_driver_on_a_local_study_is_refused_with_who_holds_it(tmp_path: Path) -> None:
    where = str(tmp_path / "tiny")
    with hold_study(where, "tiny"):
        with pytest.raises(UsageError) as refused, hold_study(where, "tiny"):
            pass
        text = str(refused.value)
        for part in ("study 'tiny'", where, socket.gethostname(), f"pid {os.getpid()}",
                     "lora-hpo stop", "lora-hpo resume", "frees itself"):  # fmt: skip
            assert part in text, (part, text)
    assert not Path(where).exists()  # a study that never started leaves no directory
    Path(where).mkdir()
    with hold_study(where, "tiny"):  # released at the block's end
        pass
    assert (tmp_path / "tiny" / DRIVER_FILE).read_text() == ""  # no departed owner named


def test_a_killed_local_holder_frees_the_study_at_once(tmp_path: Path) -> None:
    where = str(tmp_path / "tiny")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, where], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(UsageError, match=f"pid {holder.pid}"), hold_study(where, "tiny"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with hold_study(where, "tiny"):  # the kernel dropped the dead holder's lock
        pass


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with running() as server:
        yield server


def _lease(s3: S3, name: str, **owner: object) -> str:
    """A lease object written as a driver elsewhere would (host, pid, heartbeat...)."""
    body = {"host": "pod-a", "pid": 7, "started": "2026-12-07T10:00:00+00:00", "token": "x"}
    s3.client.put_object(Bucket=BUCKET, Key=f"{name}/{DRIVER_FILE}", Body=json.dumps(body | owner))
    return f"s3://{BUCKET}/{name}"


def test_a_live_s3_lease_refuses_a_second_driver_and_goes_at_the_end(s3: S3) -> None:
    where = f"s3://{BUCKET}/held"
    with hold_study(where, "held", heartbeat_s=0.2):
        kept = json.loads(s3.text(f"held/{DRIVER_FILE}"))
        assert (kept["host"], kept["pid"]) == (socket.gethostname(), os.getpid())
        told: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(UsageError) as refused, hold_study(where, "held", say=told.append):
            pass
        assert time.monotonic() - t0 < STALE_S  # refused once it moved, not waited out
        assert len(told) == 1 and "waiting to see whether that driver is alive" in told[0]
        text = str(refused.value)
        for part in (f"pid {os.getpid()}", "last heartbeat", "goes stale 30 s after"):
            assert part in text, (part, text)
    assert s3.keys(f"held/{DRIVER_FILE}") == []


def test_a_stale_s3_lease_is_taken_at_once_saying_whose(s3: S3) -> None:
    where = _lease(s3, "stale", heartbeat=time.time() - 3600)  # its driver died an hour ago
    told: list[str] = []
    with hold_study(where, "stale", say=told.append):
        assert json.loads(s3.text(f"stale/{DRIVER_FILE}"))["pid"] == os.getpid()
    assert len(told) == 1 and "taking the stale lease of host 'pod-a', pid 7" in told[0], told


def test_a_lease_no_one_renews_is_taken_once_stale_and_a_retry_waits_for_a_live_one(
    s3: S3,
) -> None:
    """A driver killed a moment ago left a fresh lease: the next driver watches it and takes
    it once it has not moved for stale_s (as this driver sees it: clocks may differ). A
    retry (wait_s) waits for a live holder that long, then is refused."""
    where = _lease(s3, "retry", heartbeat=time.time())  # fresh, but no one renews it
    t0 = time.monotonic()
    with hold_study(where, "retry", stale_s=1.5, say=lambda _: None):
        waited = time.monotonic() - t0
    assert waited >= 1.5, waited  # it took the lease only once stale, not before
    with hold_study(where, "retry", heartbeat_s=0.2):  # alive: heartbeats every 0.2 s
        t0 = time.monotonic()
        # stale_s well past wait_s: a loaded machine can delay the holder's 0.2-s heartbeats
        # by a second or more, and a live lease must not look stale within the retry's wait
        retry = hold_study(where, "retry", wait_s=3, stale_s=20, say=lambda _: None)
        with pytest.raises(UsageError, match="already being run"), retry:
            pass
        assert time.monotonic() - t0 >= 3


def test_a_driver_whose_lease_was_taken_stops_as_on_sigterm(s3: S3) -> None:
    where = f"s3://{BUCKET}/taken"
    told: list[str] = []
    deadline = time.monotonic() + 20
    held = hold_study(where, "taken", heartbeat_s=0.2, say=told.append)
    with pytest.raises(Interrupted) as stopped, sigterm_stops_gracefully(), held:
        _lease(s3, "taken", heartbeat=time.time(), token="another")
        while time.monotonic() < deadline:  # until the heartbeat thread stops this one
            time.sleep(0.05)  # the signal's handler runs between these short sleeps
    assert stopped.value.signum == signal.SIGTERM
    assert any("lost the study's lease" in line and "pod-a" in line for line in told), told
