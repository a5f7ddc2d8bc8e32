"""lora-hpo: search LoRA hyperparameters with Ray Tune, Optuna, PEFT and MLflow.

The public API is small; heavy modules load only when their function is called:
``load_spec``, ``compile_space``, ``derive`` (no torch or Ray), ``run_study`` /
``resume_study`` (Ray Tune), ``best_configs`` / ``export_adapter`` (MLflow).
"""

from __future__ import annotations

import importlib
from typing import Any

from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import load_spec

__all__ = [
    "SpecError",
    "best_configs",
    "compile_space",
    "derive",
    "export_adapter",
    "load_spec",
    "resume_study",
    "run_study",
]
__version__ = "0.1.0"

_LAZY = {
    "best_configs": "lora_hpo.analysis.best_configs",
    "export_adapter": "lora_hpo.analysis.best_configs",
    "run_study": "lora_hpo.search.study_runner",
    "resume_study": "lora_hpo.search.study_runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lora_hpo' has no attribute {name!r}")
