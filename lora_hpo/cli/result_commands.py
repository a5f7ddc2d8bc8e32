"""``lora-hpo best | export``: a study's results, read from MLflow, as a table or JSON.

Imports no MLflow until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lora_hpo.cli.text_table import format_table


def add_tracking_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: the spec's tracking.tracking_uri, else"
        " MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)",
    )


@contextmanager
def _mlflow_errors(uri: str | None) -> Iterator[None]:
    """MLflow failures (server down, refused) as one line and exit code 1."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        from lora_hpo.tracking.mlflow_store import resolve_tracking_uri

        where = resolve_tracking_uri(uri)[0]
        message = " ".join(str(exc).split())[:300]
        raise _Failure(f"error: MLflow at {where}: {message}") from None


class _Failure(Exception):
    pass


def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            with _mlflow_errors(args.tracking_uri):
                return handler(args)
        except _Failure as exc:
            print(exc, file=sys.stderr)
            return 1

    return run


def best(args: argparse.Namespace) -> int:
    from lora_hpo.analysis.best_configs import best_configs

    entries = best_configs(args.experiment, args.top, args.metric, args.tracking_uri)
    print(json.dumps(entries, indent=2) if args.json else format_best(entries))
    return 0


def format_best(entries: list[dict[str, Any]]) -> str:
    metric = entries[0]["metric"] if entries else "metric"
    header = ["rank", metric, "r", "alpha", "rsLoRA", "lr", "scale", "status", "adapter", "run"]
    rows = []
    for e in entries:
        p = e["params"]
        rows.append(
            [
                e["rank"],
                f"{e['value']:.4f}",
                p.get("r", "-"),
                f"{p.get('lora_alpha', float('nan')):.3g}",
                "yes" if p.get("use_rslora") else "no",
                f"{p.get('learning_rate', float('nan')):.2e}",
                f"{p.get('effective_scale', float('nan')):.3g}",
                e["status"],
                "yes" if e["adapter"] else "no",
                e["run_id"],
            ]
        )
    return format_table(header, rows)


def export(args: argparse.Namespace) -> int:
    from lora_hpo.analysis.best_configs import export_adapter

    out = export_adapter(args.experiment, args.out, args.rank, args.tracking_uri)
    print(f"exported the rank-{args.rank} adapter of {args.experiment!r} to {out}:")
    for path in sorted(out.iterdir()):
        print(f"  {path.name}")
    return 0


def predict(args: argparse.Namespace) -> int:
    from lora_hpo.analysis.bundle_predict import predict as run_predict

    rows, share = run_predict(Path(args.adapter), Path(args.input), args.max_new_tokens)
    lines = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    if args.output:
        Path(args.output).write_text(lines)
    else:
        sys.stdout.write(lines)
    if share is not None:
        print(f"right on {share:.4f} of {len(rows)} rows that carry the answer", file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("best", help="the best configs of a study, from MLflow")
    p.add_argument("--experiment", required=True, metavar="NAME", help="the study's experiment")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many (default 5)")
    p.add_argument("--metric", help="rank by this metric (default: the study's)")
    p.add_argument("--json", action="store_true", help="a JSON list, best first")
    add_tracking_flag(p)
    p.set_defaults(func=_guard(best))

    p = sub.add_parser("export", help="write a study's adapter with its spec and params")
    p.add_argument("--experiment", required=True, metavar="NAME", help="the study's experiment")
    p.add_argument("--out", required=True, metavar="DIR", help="an empty or new directory")
    p.add_argument("--rank", type=int, default=1, metavar="N", help="1 = the best (default)")
    add_tracking_flag(p)
    p.set_defaults(func=_guard(export))

    p = sub.add_parser("predict", help="classify (or complete) rows with an exported adapter")
    p.add_argument("--adapter", required=True, metavar="DIR", help="a `lora-hpo export` folder")
    p.add_argument("--input", required=True, metavar="ROWS", help="JSON lines, JSON, CSV, parquet")
    p.add_argument("--output", metavar="FILE", help="JSON lines out (default: stdout)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="causal LM: tokens to generate")
    p.set_defaults(func=predict)
