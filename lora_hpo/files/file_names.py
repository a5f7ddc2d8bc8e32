"""The names of the files lora-hpo writes, in one place: readers and writers live in different
layers (a trial writes its record; tracking, analysis and the study's storage read it)."""

from __future__ import annotations

SPEC_FILE = "lora_hpo_spec.yaml"  # the resolved spec: in the study directory and every export
TRIAL_FILE = "lora_hpo_trial.json"  # params + metrics, beside every adapter checkpoint
TRACKER_STATE = "lora_hpo_mlflow.json"  # the MLflow tracker's state and outbox, per study
STAGED_STATE = "lora_hpo_staged.json"  # a staged study's finished stages and decision
DEFAULT_STORAGE = "lora-hpo-results"  # the results root under the working directory
