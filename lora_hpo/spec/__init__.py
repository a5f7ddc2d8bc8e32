"""What a study is: the schema (frozen dataclasses), the YAML loader and parser, cross-field
checks and guardrail warnings, the search space compiled to Optuna distributions (with the
derived alpha), the closed registries, the memory estimate, and the outcome rules (a trial's
status, the ranking, the evaluation schedule) that every other layer reads. Files and scratch
folders are ``lora_hpo.files``.

No torch, Ray, transformers, PEFT, datasets or MLflow import anywhere in this package (an
import-linter contract keeps it so), so ``lora-hpo validate`` answers at once.
"""

from __future__ import annotations

from lora_hpo.spec.spec_errors import Problem, SpecError, UsageError
from lora_hpo.spec.spec_loader import load_spec, load_specs, parse_spec, spec_hash, spec_to_dict
from lora_hpo.spec.spec_schema import StudySpec

__all__ = [
    "Problem",
    "SpecError",
    "StudySpec",
    "UsageError",
    "load_spec",
    "load_specs",
    "parse_spec",
    "spec_hash",
    "spec_to_dict",
]
