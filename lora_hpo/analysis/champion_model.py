"""The champion as an MLflow model: a pyfunc that carries the export bundle (adapter, tokenizer,
labels, spec; ``export_bundle.py``) and loads the base model with the adapter, so that
``mlflow.pyfunc.load_model("models:/NAME@champion").predict(df)`` and ``mlflow models serve``
answer a data frame with the study's text column (the predicted label names) or prompt column
(the generated completions). The base model itself is not copied: it loads from where the spec
names it (the hub id, the demo package or the local path), as the export's own code does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc.model import PythonModel

BUNDLE = "bundle"  # the artifact holding the export bundle
NEW_TOKENS = 16  # completions' default length; ``params={"max_new_tokens": n}`` changes it


class AdapterModel(PythonModel):  # type: ignore[misc]
    """Base model + adapter from the bundle; ``predict`` answers one value per row."""

    def load_context(self, context: Any) -> None:
        from lora_hpo.analysis.bundle_predict import load_bundle

        self.spec, self.model, self.tokenizer = load_bundle(Path(context.artifacts[BUNDLE]))

    def predict(  # a DataFrame hint: MLflow infers no schema from it (the signature has it)
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        from lora_hpo.analysis.bundle_predict import predict_rows

        rows = model_input.to_dict("records")
        new_tokens = int((params or {}).get("max_new_tokens", NEW_TOKENS))
        return predict_rows(self.spec, self.model, self.tokenizer, rows, new_tokens)


def input_column(spec: Any) -> str:
    """The column a prediction reads: the text (classification) or the prompt (causal LM)."""
    from lora_hpo.training.row_encoding import fields

    f = fields(spec.data, spec.task)
    if spec.task == "sequence-classification":
        return f["text_field"] or "text"
    return f.get("prompt_field") or f.get("text_field") or "text"


def save_adapter_model(bundle: Path, out: Path) -> None:
    """Write the MLflow model of the export ``bundle`` to the new folder ``out``."""
    import peft
    import torch
    import transformers
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    import lora_hpo
    from lora_hpo.files.file_names import SPEC_FILE
    from lora_hpo.spec.spec_loader import load_spec

    column = input_column(load_spec(bundle / SPEC_FILE))
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", column)]),
        outputs=Schema([ColSpec("string")]),
        params=ParamSchema([ParamSpec("max_new_tokens", "long", NEW_TOKENS)]),
    )
    requirements = [
        f"lora-hpo=={lora_hpo.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"peft=={peft.__version__}",
    ]
    mlflow.pyfunc.save_model(
        str(out),
        python_model=AdapterModel(),
        artifacts={BUNDLE: str(bundle)},
        signature=signature,
        pip_requirements=requirements,
    )


def champion_folder(staged: Path, out: Path, run: dict[str, Any]) -> None:
    """The tracker's ``ModelFolder`` (``lora_hpo.tracking.champion_version``): the MLflow model
    of a staged checkpoint (adapter files, spec, trial record), its export bundle completed
    as ``lora-hpo export --rank 1`` completes it (tokenizer, labels, record, model card)."""
    import shutil

    from lora_hpo.analysis.export_bundle import complete, lineage_of
    from lora_hpo.analysis.trial_runs import typed
    from lora_hpo.files.file_names import SPEC_FILE
    from lora_hpo.files.scratch_folders import Scratch
    from lora_hpo.spec.spec_loader import load_spec

    metric, tags = load_spec(staged / SPEC_FILE).metric, run["tags"]
    about = {
        "run_id": run["run_id"],
        "trial_id": tags.get("lora_hpo.trial_id"),
        "status": tags.get("status"),
        "metric": metric,
        "value": run["metrics"].get(metric, float("nan")),
        "params": {k: typed(v) for k, v in run["params"].items()},
        "lineage": lineage_of(tags),
        "metrics": run["metrics"],
        "experiment": run["experiment"],
        "rank": 1,
    }
    with Scratch("bundle") as tmp:
        bundle = Path(tmp) / BUNDLE
        shutil.copytree(staged, bundle)
        complete(bundle, about)
        save_adapter_model(bundle, out)
