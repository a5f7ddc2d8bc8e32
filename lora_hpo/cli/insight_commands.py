"""``lora-hpo report`` and ``lora-hpo transfer``: reading a finished study."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lora_hpo.spec.spec_errors import UsageError


def _report(args: argparse.Namespace) -> int:
    from lora_hpo.analysis.study_report import build_report

    files = build_report(args.experiment, Path(args.out), args.tracking_uri)
    for f in files:
        print(f)
    return 0


def _source(args: argparse.Namespace) -> tuple[Any, Any]:
    """(source spec, source config): from ``--study``, or from the flags and ``--spec``."""
    from lora_hpo.analysis.scale_transfer import SourceConfig, source_from_study
    from lora_hpo.search.study_storage import locate_study
    from lora_hpo.spec.spec_loader import load_spec

    if args.study:
        return source_from_study(locate_study(args.study, args.storage_path))
    needed = ("r", "lora_alpha", "learning_rate", "source_hidden", "spec")
    missing = [f for f in needed if getattr(args, f) is None]
    if missing:
        flags = ", ".join("--" + m.replace("_", "-") for m in missing)
        raise UsageError(f"transfer: give --study, or a config with {flags}")
    src = SourceConfig(
        args.r, args.lora_alpha, args.use_rslora, args.learning_rate, args.source_hidden
    )
    return load_spec(args.spec), src


def _transfer(args: argparse.Namespace) -> int:
    import yaml

    from lora_hpo.analysis.scale_transfer import hidden_size_of, recommend, transferred_spec
    from lora_hpo.spec.spec_loader import spec_to_dict

    spec, src = _source(args)
    d_new, model = hidden_size_of(args.target)
    rec = recommend(src, d_new)
    print(
        f"source: r={src.r}, alpha={src.lora_alpha:g}, rsLoRA={src.use_rslora}, "
        f"lr={src.learning_rate:.2g}, hidden={src.hidden_size}; target hidden={d_new}"
    )
    print(
        f"recommended: r={rec.r}, lora_alpha={rec.lora_alpha:g} (alpha/r {rec.alpha_ratio:g}),"
        f" rsLoRA={rec.use_rslora}, lr in [{rec.lr_low:.2g}, {rec.lr_high:.2g}]"
    )
    for note in rec.notes:
        print(f"  - {note}")
    out = Path(args.out or f"{spec.name}-transfer.yaml")
    text = yaml.safe_dump(spec_to_dict(transferred_spec(spec, rec, model)), sort_keys=False)
    out.write_text(f"# written by lora-hpo transfer: {'; '.join(rec.notes)}\n{text}")
    print(f"wrote {out} (validate with: lora-hpo validate {out})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="draw a study's plots (PNG + HTML) from MLflow")
    p.add_argument("--experiment", required=True)
    p.add_argument("--out", default="lora-hpo-report", help="output directory")
    p.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else ./mlflow.db")
    p.set_defaults(func=_report)

    p = sub.add_parser("transfer", help="carry a tuned config to a model of another size")
    p.add_argument("--study", metavar="NAME_OR_PATH", help="a finished study (Ray results)")
    p.add_argument("--storage-path", help="results root the study lives under")
    p.add_argument("--r", type=int)
    p.add_argument("--lora-alpha", type=float)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--use-rslora", action="store_true")
    p.add_argument("--source-hidden", type=int, help="hidden size of the source model")
    p.add_argument("--spec", help="the source spec file (with a config given by flags)")
    p.add_argument("--target", required=True, help="a hidden size, demo name, path or hub id")
    p.add_argument("--out", help="where to write the narrowed spec")
    p.set_defaults(func=_transfer)
