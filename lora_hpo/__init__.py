"""lora-hpo: search LoRA hyperparameters with Ray Tune, Optuna, PEFT and MLflow.

The public API is small; heavy modules load only when their function is called.
"""

from __future__ import annotations

from typing import Any

from lora_hpo.errors import SpecError
from lora_hpo.loader import load_spec
from lora_hpo.space import compile_space, derive

__all__ = ["SpecError", "compile_space", "derive", "load_spec"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:  # lazy: run_study, best_configs, export_adapter
    lazy = {
        "best_configs": "lora_hpo.results",
        "export_adapter": "lora_hpo.results",
        "run_study": "lora_hpo.tuner",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'lora_hpo' has no attribute {name!r}")
