"""MLflow as the study's system of record: a Ray Tune callback on the driver, the single writer.
One experiment per study, one parent run per study (spec artifact, spec hash, search settings),
one child run per trial (params with the derived alpha and scale, step-indexed curves, a status
tag, lineage tags), adapters as artifacts, the best one registered with the alias ``champion``.

Callbacks only queue records (``record_outbox.py``); one thread sends them (``record_writer.py``).
What was queued, and which run belongs to which trial, lives in the study directory's
tracker state file, so after a driver crash ``lora-hpo resume`` maps each trial to its one
run and leaves none RUNNING. ``study_tracking.py`` makes one tracker per study.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

import yaml
from ray.tune import Callback

from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_loader import spec_to_dict
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.trial_outcome import ranked, trial_status
from lora_hpo.tracking.champion_version import ModelFolder
from lora_hpo.tracking.mlflow_store import classify, fs_ref, resolve_tracking_uri, ui_link
from lora_hpo.tracking.record_outbox import Outbox
from lora_hpo.tracking.record_writer import Writer
from lora_hpo.tracking.run_lineage import (
    Redactor,
    curve,
    dataset_input,
    lineage_tags,
    outcome_tags,
    study_params,
    study_tags,
)
from lora_hpo.tracking.tracker_state import StateFile, new_state

TERMINAL = ("TERMINATED", "ERROR")
RUN_STATUS = {"failed": "FAILED", "interrupted": "KILLED"}  # every other status: FINISHED
REPORTED = {"base_revision": "base_model_revision", "data_fingerprint": "dataset_fingerprint"}


class MLflowTracker(Callback):  # type: ignore[misc]
    """One study's tracker, on the driver; its state is in ``state_dir`` (the study dir)."""

    interrupted = False  # set when SIGINT or SIGTERM stops the study (search.driver_signals)

    def __init__(
        self,
        spec: StudySpec,
        tracking_uri: str | None = None,
        *,
        state_dir: str,
        flush_timeout_s: float = 60.0,
        stream: TextIO | None = None,
        parent_run_id: str | None = None,
        study_run_tags: dict[str, str] | None = None,
        model_folder: ModelFolder | None = None,
    ) -> None:
        """``parent_run_id``: nest the study run under it (a staged study's parent run);
        ``study_run_tags``: more tags for the study run (what its warm start used);
        ``model_folder``: makes the champion's MLflow model (``champion_version.py``)."""
        self.model_folder = model_folder
        self.spec, self.state_dir, self.stream = spec, state_dir, stream
        self.parent_run_id, self.study_run_tags = parent_run_id, dict(study_run_tags or {})
        self.tracking_uri, self.flush_timeout_s = tracking_uri, flush_timeout_s
        self.uri, self.artifact_location = resolve_tracking_uri(
            tracking_uri, spec.tracking.tracking_uri
        )
        self.redact = Redactor()
        self.spec_text = self.redact(yaml.safe_dump(spec_to_dict(spec), sort_keys=False))
        self.outbox: Outbox | None = None
        self.state: dict[str, Any] = {}
        self._lineage: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the run config with callbacks
        keep: tuple[str, ...] = ("tracking_uri", "state_dir", "flush_timeout_s", "parent_run_id")
        keep += ("study_run_tags", "model_folder")
        return {"spec": self.spec, **{k: getattr(self, k) for k in keep}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        spec, uri = state.pop("spec"), state.pop("tracking_uri")
        self.__init__(spec, uri, **state)  # type: ignore[misc]

    # --- Tune hooks (driver thread): bookkeeping and queueing only, never the network -------

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if trials:
            self._ensure(trials)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ensure(trials)
        self._open(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._ensure(trials)
        self._open(trial)
        self._result(trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ensure(trials)
        self._close(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ensure(trials)
        self._close(trial, "ERROR")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.interrupted:  # a signal stopped Tune, which marked its live trials TERMINATED
            self.abort()
        elif trials or self.outbox is not None:
            self._ensure(trials)
            self._finish(trials)
            self.box.drain(self.flush_timeout_s)

    # --- state ---------------------------------------------------------------------------

    @property
    def box(self) -> Outbox:
        assert self.outbox is not None, "the tracker has not seen a trial yet"
        return self.outbox

    def _ensure(self, trials: list[Any]) -> None:
        """Load or start the state at the first event naming a trial; reconcile a resume."""
        if self.outbox is not None:
            return
        where = self.state_dir
        file = StateFile(where)
        old = file.load(self.stream) or {}  # StateFileError (exit 2) when it does not parse
        resumed = bool({t.trial_id for t in trials} & set(old.get("trials", {})))
        uri = self.redact(self.uri)
        self.state = old if resumed else new_state(self.spec.name, self.spec.experiment, uri, where)
        self._lineage = self.redact.mapping(lineage_tags(self.spec))
        dataset = self.redact.mapping(
            dataset_input(self.spec, self._lineage["dataset_fingerprint"])
        )
        lock = threading.RLock()
        names = (self.spec.experiment, self.spec.tracking.registered_model or self.spec.experiment)
        facts = (self.spec_text, self.model_folder, dataset)
        writer = Writer(self.uri, self.artifact_location, self.state, lock, names, *facts)
        self.outbox = Outbox(self.state, file, writer, classify, uri, self.stream, lock=lock)
        with lock:
            if old and not resumed and old.get("tracking_uri") == self.state["tracking_uri"]:
                self._retire(old)
            tags = {**study_tags(self.spec), **self.study_run_tags, "lora_hpo.study_dir": where}
            if self.parent_run_id is not None:
                tags["mlflow.parentRunId"] = self.parent_run_id
            params = self.redact.mapping(study_params(self.spec))
            tags = self.redact.mapping({"lora_hpo.role": "study", **tags, **self._lineage})
            self.box.put({"op": "open_study", "params": params, "tags": tags})
            if resumed:
                self._reconcile(trials)
        self.box.start()

    def _retire(self, old: dict[str, Any]) -> None:
        """A fresh study over an old study's directory: end the old study's open runs."""
        runs = [e.get("run_id") for e in old.get("trials", {}).values() if not e.get("closed")]
        runs += [] if old.get("finished") else [old.get("parent_run_id")]
        for run_id in filter(None, runs):
            self.box.put({"op": "retire", "run_id": run_id})

    def _reconcile(self, trials: list[Any]) -> None:
        """Resume: a trial Tune lost has its run deleted (also when the state file never named
        it), a finished one is closed, a failed one that Tune retries is reopened, an
        unfinished one keeps its RUNNING run."""
        by_id = {t.trial_id: t for t in trials}
        self.state["finished"] = False
        for tid, entry in list(self.state["trials"].items()):
            trial = by_id.get(tid)
            if trial is None:
                del self.state["trials"][tid]
                self.state["queue"] = [r for r in self.state["queue"] if r.get("trial") != tid]
                self.box.put({"op": "lose", "trial_id": tid})
            elif trial.status in TERMINAL:
                self._close(trial, trial.status)
            elif entry["closed"]:  # Tune runs it again (failed, or finished unrecorded)
                entry.update(closed=False, adapter=False)
                self.box.put({"op": "reopen", "trial": tid})
        # a run the state file on storage never heard of (it lagged the killed driver)
        self.box.put({"op": "lose_unknown", "keep": sorted(by_id)})

    # --- records -------------------------------------------------------------------------

    def _open(self, trial: Any) -> None:
        tid = trial.trial_id
        if tid in self.state["trials"]:
            return
        params = derive(self.spec.space, trial.config).as_dict() | {"trial_id": tid}
        tags = {"lora_hpo.role": "trial", "status": "running", **self._lineage}
        params, tags = self.redact.mapping(params), self.redact.mapping(tags)
        with self.box.lock:
            self.state["trials"][tid] = {"run_id": None, "step": -1, "closed": False}
            self.box.put({"op": "open_trial", "trial": tid, "params": params, "tags": tags})

    def _result(self, trial: Any, result: dict[str, Any] | None) -> None:
        """Queue one report's curves at its step; a step already queued is never queued again
        (after a resume, a trial re-reports the steps after its last checkpoint)."""
        step = (result or {}).get("step")
        if not result or not isinstance(step, (int, float)) or isinstance(step, bool):
            return
        with self.box.lock:
            entry = self.state["trials"][trial.trial_id]
            if int(step) <= entry["step"]:
                return
            record = {"op": "log", "trial": trial.trial_id, "step": int(step)}
            record |= {"ts": int(time.time() * 1000), "metrics": curve(result)}
            if entry["step"] < 0:  # first report: what only the trial knows
                record["params"] = {k: result[k] for k in ("trainable_params",) if k in result}
                got = {tag: result[key] for key, tag in REPORTED.items() if result.get(key)}
                record["tags"] = self.redact.mapping(got)
            entry["step"] = int(step)
            self.box.put(record)

    def _close(self, trial: Any, tune_status: str) -> None:
        if trial.trial_id not in self.state["trials"] and not trial.last_result:
            return  # never started: no run
        self._open(trial)
        self._result(trial, trial.last_result)
        status = trial_status(tune_status, trial.last_result, self.spec.training.max_steps)
        status = "interrupted" if status in ("running", "pending") else status
        with self.box.lock:
            entry = self.state["trials"][trial.trial_id]
            if entry["closed"]:
                return
            entry.update(closed=True, status=status)
            if status == "completed" and self.spec.tracking.log_adapters == "completed":
                self._adapter(trial)
            tags = self.redact.mapping(outcome_tags(status, trial.last_result))
            record = {"op": "close", "trial": trial.trial_id, "tags": tags}
            self.box.put(record | {"run_status": RUN_STATUS.get(status, "FINISHED")})

    def _adapter(self, trial: Any) -> str | None:
        """Queue the trial's last checkpoint as its adapter artifact (once); its reference."""
        entry, checkpoint = self.state["trials"].get(trial.trial_id), trial.checkpoint
        if entry is None or checkpoint is None:
            return None
        ref = fs_ref(checkpoint.filesystem, checkpoint.path)
        if not entry.get("adapter"):
            entry["adapter"] = True
            self.box.put({"op": "adapter", "trial": trial.trial_id, "checkpoint": ref})
        return ref

    def _ranked(self, trials: list[Any]) -> list[Any]:
        """The trials that rank under the shared rule (by their recorded status), best first."""
        entries, metric = self.state["trials"], self.spec.metric

        def describe(t: Any) -> tuple[str, str, Any]:
            status = entries.get(t.trial_id, {}).get("status", "")
            return t.trial_id, status, (t.last_result or {}).get(metric)

        return ranked(trials, describe, self.spec.mode)

    def _finish(self, trials: list[Any]) -> None:
        """Experiment end: close every run, log top-k adapters, register the champion."""
        with self.box.lock:
            for trial in trials:
                self._close(trial, trial.status)
            ranked = self._ranked(trials)
            mode, k = self.spec.tracking.log_adapters, self.spec.tracking.top_k
            for trial in ranked[:k] if mode == "top-k" else []:
                self._adapter(trial)
            ref = self._adapter(ranked[0]) if ranked and mode != "none" else None
            if ref is not None:
                self.box.put({"op": "champion", "trial": ranked[0].trial_id, "checkpoint": ref})
            statuses = [e.get("status", "interrupted") for e in self.state["trials"].values()]
            tags = {f"lora_hpo.trials.{s}": statuses.count(s) for s in set(statuses)}
            if ranked:
                tags["lora_hpo.best_trial_id"] = ranked[0].trial_id
            done = all(t.status in TERMINAL for t in trials)
            self.state["finished"] = done
            run_status = "FINISHED" if done else "KILLED"
            self.box.put({"op": "close", "trial": None, "run_status": run_status, "tags": tags})

    def abort(self) -> None:
        """Close every open run as KILLED (its first attempts all failed, or ``interrupted``)."""
        if self.outbox is None:
            return
        with self.box.lock:
            for tid, entry in self.state["trials"].items():
                if not entry["closed"]:
                    entry.update(closed=True, status="interrupted")
                    record = {"op": "close", "trial": tid, "tags": {"status": "interrupted"}}
                    self.box.put(record | {"run_status": "KILLED"})
            self.box.put({"op": "close", "trial": None, "run_status": "KILLED", "tags": {}})
        self.box.drain(self.flush_timeout_s)

    def summary(self) -> str:
        """Where the study's records are, for the end of ``lora-hpo run``."""
        where = ui_link(self.redact(self.uri), self.state.get("experiment_id"))
        lines = [f"MLflow: experiment {self.spec.experiment!r} at {where}"]
        if champion := self.state.get("champion"):
            lines.append(
                f"champion: models:/{champion['name']}@champion (version {champion['version']},"
                f" trial {champion['trial_id']}, run {champion['run_id']})"
            )
        return "\n".join(lines)
