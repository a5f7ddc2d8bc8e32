"""The sender side of tracking: applies one queued record to MLflow, in the outbox's thread,
and notes in the tracker state what it created (the experiment, the study run, each trial's
run, the champion). Every operation can be repeated without creating a duplicate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.tracking.champion_version import ModelFolder
from lora_hpo.tracking.mlflow_store import ADAPTER_DIR, ADAPTER_TAG, SPEC_NAME, Store, stage_adapter


class Writer:
    """``writer(record)`` sends one record; ``record["op"]`` picks the ``_op_*`` method."""

    def __init__(
        self,
        uri: str,
        artifact_location: str | None,
        state: dict[str, Any],
        lock: Any,
        names: tuple[str, str],  # (experiment, registered model)
        spec_text: str,
        model_folder: ModelFolder | None = None,
        dataset: dict[str, str] | None = None,
    ) -> None:
        """``model_folder``: makes the champion's MLflow model (else its bare adapter is
        registered; see ``champion_version.py``); ``dataset``: the study's data, logged as
        the input of the study run and of each trial run (``run_lineage.dataset_input``),
        each with its run's ``dataset_fingerprint`` as the digest."""
        self.uri, self.artifact_location = uri, artifact_location
        self.model_folder, self.dataset = model_folder, dataset
        self.state, self.lock = state, lock
        self.experiment, self.model_name = names
        self.spec_text = spec_text
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.uri, self.artifact_location)
        return self._store

    def __call__(self, record: dict[str, Any]) -> None:
        op = getattr(self, f"_op_{record['op']}", None)
        if op is None:
            raise ValueError(f"unknown tracking record op {record['op']!r}")
        op(record)

    def _run_of(self, tid: str | None) -> str | None:
        """The trial's run (the parent for None); None when it was never created."""
        with self.lock:
            if tid is None:
                run_id = self.state.get("parent_run_id")
            else:
                run_id = self.state["trials"].get(tid, {}).get("run_id")
        return None if run_id is None else str(run_id)

    def _op_open_study(self, record: dict[str, Any]) -> None:
        experiment_id = self.store.experiment_id(self.experiment)
        match = {"lora_hpo.role": "study", "lora_hpo.study_key": str(self.state["study_key"])}
        run_id = self.store.get_or_create_run(experiment_id, match, self.state["study"], {})
        self.store.log(run_id, record)
        self.store.log_dataset(run_id, self.dataset)
        self.store.log_text(run_id, self.spec_text, SPEC_NAME)
        self.store.set_status(run_id, "RUNNING")
        with self.lock:
            self.state.update(experiment_id=experiment_id, parent_run_id=run_id)

    def _trial_match(self, tid: str) -> dict[str, str]:
        """The tags that name a trial's run: one run per (study, trial)."""
        key = str(self.state["study_key"])
        return {"lora_hpo.role": "trial", "lora_hpo.study_key": key, "lora_hpo.trial_id": tid}

    def _op_open_trial(self, record: dict[str, Any]) -> None:
        parent, tid = self._run_of(None), record["trial"]
        with self.lock:
            lost = tid not in self.state["trials"]
        if parent is None or lost:
            return  # the study run could not be created (already reported), or Tune lost it
        tags = {**record["tags"], "mlflow.parentRunId": parent}
        experiment_id = self.state["experiment_id"]
        run_id = self.store.get_or_create_run(experiment_id, self._trial_match(tid), tid, tags)
        self.store.log(run_id, {"params": record["params"], "tags": tags})
        with self.lock:
            self.state["trials"][tid]["run_id"] = run_id

    def _op_log(self, record: dict[str, Any]) -> None:
        """A report; the first one's ``dataset_fingerprint`` (of the data the trial loaded)
        is the digest of the trial run's dataset input."""
        run_id = self._run_of(record["trial"])
        if run_id is not None:
            self.store.log(run_id, record)
            fingerprint = record.get("tags", {}).get("dataset_fingerprint")
            if fingerprint and self.dataset:
                self.store.log_dataset(run_id, self.dataset | {"digest": fingerprint})

    def _op_close(self, record: dict[str, Any]) -> None:
        run_id = self._run_of(record["trial"])
        if run_id is None:
            return
        tags = dict(record.get("tags", {}))
        best = tags.get("lora_hpo.best_trial_id")
        if best and self._run_of(best):
            tags["lora_hpo.best_run_id"] = str(self._run_of(best))
        self.store.log(run_id, {"tags": tags})
        self.store.set_status(run_id, record["run_status"])

    def _op_reopen(self, record: dict[str, Any]) -> None:
        """A closed trial that Tune runs again: RUNNING, and its adapter no longer current
        (the tag goes; the trial's next adapter, if any, overwrites the files)."""
        run_id = self._run_of(record["trial"])
        if run_id is not None:
            self.store.log(run_id, {"tags": {"status": "running"}})
            if ADAPTER_TAG in self.store.client.get_run(run_id).data.tags:
                self.store.client.delete_tag(run_id, ADAPTER_TAG)
            self.store.set_status(run_id, "RUNNING")

    def _op_retire(self, record: dict[str, Any]) -> None:
        self.store.set_status(record["run_id"], "KILLED")

    def _op_lose(self, record: dict[str, Any]) -> None:
        """Delete the runs of a trial that the resumed Tune experiment no longer has."""
        if self.state.get("experiment_id") is not None:
            match = self._trial_match(record["trial_id"])
            for run_id in self.store.find_runs(self.state["experiment_id"], match):
                self.store.delete(run_id)

    def _op_lose_unknown(self, record: dict[str, Any]) -> None:
        """Delete this study's trial runs whose trial the resumed Tune experiment does not have:
        a killed driver can create a run before the state file naming it reaches storage."""
        experiment_id = self.state.get("experiment_id")
        if experiment_id is None:
            return
        keep = set(record["keep"])
        with self.lock:
            keep |= set(self.state["trials"])
        match = {"lora_hpo.role": "trial", "lora_hpo.study_key": str(self.state["study_key"])}
        for run_id, tid in self.store.trial_runs(experiment_id, match).items():
            if tid not in keep:
                self.store.delete(run_id)

    def _op_adapter(self, record: dict[str, Any]) -> None:
        run_id = self._run_of(record["trial"])
        if run_id is not None:
            self.store.log_adapter(run_id, record["checkpoint"], self.spec_text)
            self.store.log(run_id, {"tags": {ADAPTER_TAG: ADAPTER_DIR}})

    def _op_champion(self, record: dict[str, Any]) -> None:
        run_id, tid = self._run_of(record["trial"]), record["trial"]
        if run_id is None:
            return
        tags = {"lora_hpo.trial_id": tid, "lora_hpo.study_key": str(self.state["study_key"])}
        with Scratch("expected") as tmp:
            expected = stage_adapter(record["checkpoint"], self.spec_text, Path(tmp))
            make = self.model_folder
            model = None if make is None else (Path(tmp), make, {"experiment": self.experiment})
            version = self.store.register(self.model_name, run_id, expected, tags, model)
        with self.lock:
            self.state["champion"] = {
                "name": self.model_name,
                "version": version,
                "run_id": run_id,
                "trial_id": tid,
            }
