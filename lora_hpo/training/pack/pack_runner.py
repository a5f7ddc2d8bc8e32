"""Slots on one engine: trials claim a slot with their config (and a checkpoint to resume
from), then take their reports one by one. One thread trains every slot that is not waiting;
a slot that has reported waits until its trial comes back for the next report (so the
scheduler's decision on a report comes before any more training, as with an unpacked trial),
and a slot whose trial ends, or stays away longer than the lease, is freed for the next config
without touching the base model.

Every change to the engine (adding or dropping an adapter, a step, an evaluation) happens on
the training thread; the trials' calls only queue work and wait on the condition.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.pack.pack_archive import pack_folder, unpack_folder
from lora_hpo.training.pack.pack_engine import Engine
from lora_hpo.training.trial_checkpoints import final_report

LEASE_S = 600.0  # a slot whose trial has not come back for this long is freed


@dataclass
class Slot:
    key: str
    sampled: dict[str, Any]
    restore: bytes | None
    seen_at: float = field(default_factory=time.monotonic)
    adapter: Any = None
    waiting: bool = False  # reported; trains again when its trial asks for the next report
    report: tuple[dict[str, Any], bytes] | None = None
    error: str | None = None
    final: bool = False


class PackError(RuntimeError):
    """A slot's training failed; the message holds the pack's traceback."""


class PackRunner:
    """Up to ``capacity`` adapters of study ``spec`` on one engine, trained by one thread."""

    def __init__(self, spec: StudySpec, capacity: int, placement: dict[str, Any]) -> None:
        self.spec, self.capacity, self.placement = spec, capacity, placement
        self.cond = threading.Condition()
        self.slots: dict[str, Slot] = {}
        self.stopping = False
        self.fatal: str | None = None
        self.steps = 0  # packed steps taken (for the pack's own figures)
        self.work = Scratch("pack")  # checkpoints in flight: swept later if the pack is killed
        self.engine: Engine | None = None
        self.thread = threading.Thread(target=self._main, name="lora-hpo-pack", daemon=True)
        self.thread.start()

    # -- the trials' side -----------------------------------------------------------------

    def claim(self, key: str, sampled: dict[str, Any], restore: bytes | None) -> bool:
        """Take a slot for trial ``key``; False when the pack is full. A trial that claims
        again (retried after a failure) replaces its old slot."""
        with self.cond:
            if self.fatal:
                raise PackError(self.fatal)
            self.slots.pop(key, None)
            if len(self.slots) >= self.capacity or self.stopping:
                return False
            self.slots[key] = Slot(key, dict(sampled), restore)
            self.cond.notify_all()
            return True

    def next(self, key: str, timeout: float = LEASE_S) -> tuple[dict[str, Any], bytes]:
        """The trial's next report and its checkpoint (a tar of the folder); the slot trains
        on from its last report first."""
        with self.cond:
            slot = self._slot(key)
            slot.seen_at = time.monotonic()
            if slot.waiting:
                slot.waiting = False
                self.cond.notify_all()
            ready = self.cond.wait_for(
                lambda: slot.report is not None or slot.error or self.fatal or self.stopping,
                timeout=timeout,
            )
            if slot.error or self.fatal:
                self.slots.pop(key, None)
                raise PackError(slot.error or self.fatal)
            if not ready or slot.report is None:
                raise PackError(f"the pack gave trial {key} no report within {timeout:.0f} s")
            report, slot.report = slot.report, None
            slot.seen_at = time.monotonic()
            if slot.final:
                self.slots.pop(key, None)
            return report

    def drop(self, key: str) -> None:
        """The trial ended (stopped by the scheduler, or gone): free its slot."""
        with self.cond:
            slot = self.slots.pop(key, None)
            if slot is not None:
                self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(timeout=60)
        self.work.cleanup()

    def _slot(self, key: str) -> Slot:
        slot = self.slots.get(key)
        if slot is None:
            raise PackError(f"trial {key} holds no slot in this pack (freed, or never claimed)")
        return slot

    # -- the training thread ---------------------------------------------------------------

    def _main(self) -> None:
        try:
            self.engine = Engine(self.spec)
            while self._cycle():
                pass
        except BaseException:
            with self.cond:
                self.fatal = traceback.format_exc()
                self.cond.notify_all()

    def _cycle(self) -> bool:
        """Sync the engine with the slots, then one packed step; False when stopping."""
        engine = self.engine
        assert engine is not None
        with self.cond:
            self.cond.wait_for(lambda: self.stopping or self._work_to_do(engine), timeout=5.0)
            if self.stopping:
                return False
            self._expire_leases()
            gone = [k for k in engine.adapters if k not in self.slots]
            new = [s for s in self.slots.values() if s.adapter is None and not s.error]
        for key in gone:
            engine.drop(key)
        for slot in new:
            self._add(engine, slot)
        with self.cond:
            training = [
                s
                for s in self.slots.values()
                if s.adapter is not None and not s.waiting and s.report is None and not s.final
            ]
        if training:
            self._step(engine, training)
        return True

    def _work_to_do(self, engine: Engine) -> bool:
        if any(k not in self.slots for k in engine.adapters):
            return True
        return any(
            s.adapter is None or (not s.waiting and s.report is None and not s.final)
            for s in self.slots.values()
            if not s.error
        )

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for key, slot in list(self.slots.items()):
            if slot.waiting and now - slot.seen_at > LEASE_S:
                del self.slots[key]

    def _add(self, engine: Engine, slot: Slot) -> None:
        try:
            resume = None
            if slot.restore is not None:
                resume = Path(self.work.name) / f"restore-{slot.key}"
                unpack_folder(slot.restore, resume)
            adapter = engine.add(slot.key, slot.sampled, resume)
        except Exception:
            with self.cond:
                slot.error = traceback.format_exc()
                self.cond.notify_all()
            return
        with self.cond:
            kept = self.slots.get(slot.key) is slot
            if kept:
                slot.adapter = adapter
        if not kept:
            engine.drop(slot.key)
        elif resume is not None and (final := final_report(resume, self.spec)) is not None:
            self._report_again(slot, resume, final)

    def _report_again(self, slot: Slot, folder: Path, metrics: dict[str, Any]) -> None:
        """A trial restored from its final checkpoint (its driver died after the last report)
        reports that checkpoint's record again, as an unpacked trial does, and trains no
        further step (``trial_checkpoints.final_report``)."""
        blob = pack_folder(folder)
        with self.cond:
            slot.report, slot.waiting, slot.final = (metrics, blob), True, True
            self.cond.notify_all()

    def _step(self, engine: Engine, training: list[Slot]) -> None:
        try:
            engine.train_step([s.adapter for s in training])
            self.steps += 1
            due = [s for s in training if engine.due(s.adapter)]
            if due:
                self._report(engine, due)
        except Exception:
            error = traceback.format_exc()
            with self.cond:
                for slot in training:
                    slot.error = error
                self.cond.notify_all()

    def _report(self, engine: Engine, due: list[Slot]) -> None:
        evaluated = engine.evaluate([s.adapter for s in due])
        for slot in due:
            adapter = slot.adapter
            folder = Path(self.work.name) / f"{slot.key}-{adapter.step}"
            metrics = engine.report(adapter, evaluated[slot.key], folder, self.placement)
            blob = pack_folder(folder)
            _remove_tree(folder)
            with self.cond:
                slot.report = (metrics, blob)
                slot.waiting = True
                slot.final = metrics["status"] != "running"
                self.cond.notify_all()


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
