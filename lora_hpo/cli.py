"""``lora-hpo``: the command line. Exit 0 on success, 2 on bad input, 1 on a runtime failure.

Each command's module is imported only when that command runs, so ``validate`` and
``show-space`` never import torch or ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lora_hpo.cluster_cli import add_commands as add_cluster_commands
from lora_hpo.errors import SpecError, UsageError
from lora_hpo.insight_cli import add_commands as add_insight_commands
from lora_hpo.results_cli import add_commands as add_results_commands
from lora_hpo.results_cli import add_tracking_flag
from lora_hpo.table import format_table

if TYPE_CHECKING:
    from lora_hpo.spec import StudySpec
    from lora_hpo.tracking import MLflowTracker


def _validate(args: argparse.Namespace) -> int:
    from lora_hpo.checks import guardrail_warnings
    from lora_hpo.loader import load_spec

    problems = []
    for path in args.files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        for warning in guardrail_warnings(spec):
            print(f"warning: {path}: {warning}", file=sys.stderr)
        print(f"ok: {path} (study {spec.name!r}, task {spec.task})")
    if problems:
        raise SpecError(problems)
    return 0


def _show_space(args: argparse.Namespace) -> int:
    from lora_hpo.loader import load_spec
    from lora_hpo.space import describe

    spec = load_spec(args.file, args.set)
    rows = describe(spec.space)
    print(f"study {spec.name!r}: {spec.task}, metric {spec.metric} ({spec.mode})")
    print(format_table(["param", "kind", "detail"], rows))
    return 0


def _run(args: argparse.Namespace) -> int:
    from lora_hpo.loader import load_spec

    spec = load_spec(args.file, args.set)  # bad input fails here, before Ray starts
    from lora_hpo.quiet import quiet_libraries

    quiet_libraries()
    from lora_hpo.checks import guardrail_warnings
    from lora_hpo.summary import render
    from lora_hpo.tuner import run_study

    for warning in guardrail_warnings(spec):
        print(f"warning: {args.file}: {warning}", file=sys.stderr)
    if spec.search.strategy == "staged":
        return _staged(spec, args, args.storage_path)
    tracker = _tracker(spec, args)
    result = run_study(
        spec, storage_path=args.storage_path, address=args.address, callbacks=[tracker]
    )
    print(render(result))
    print(tracker.summary())
    _log_report(spec, args)
    return 0 if result.best is not None else 1


def _staged(spec: StudySpec, args: argparse.Namespace, storage_path: str | None) -> int:
    """Run or resume a staged study: one MLflow parent run, each stage's study nested in it."""
    from lora_hpo.staged import run_staged_study
    from lora_hpo.staged_tracking import StagedRun
    from lora_hpo.summary import render

    parent = StagedRun(spec, tracking_uri=args.tracking_uri)
    result = run_staged_study(
        spec, storage_path=storage_path, address=args.address, tracking=parent
    )
    print(render(result))
    print(parent.summary())
    _log_report(spec, args, parent.run_id)
    return 0 if result.best is not None else 1


def _log_report(spec: StudySpec, args: argparse.Namespace, run_id: str | None = None) -> None:
    """Draw the study's plots and log them to its MLflow parent run (never fails the run)."""
    from lora_hpo.report import log_report

    try:
        uri = args.tracking_uri or spec.tracking.tracking_uri
        run_id = log_report(spec.experiment, uri, run_id)
    except Exception as exc:  # a plotting problem must not turn a finished study into a failure
        print(f"warning: could not log the report to MLflow: {exc}", file=sys.stderr)
    else:
        print(f"report: logged under report/ on MLflow run {run_id}")


def _resume(args: argparse.Namespace) -> int:
    from lora_hpo.quiet import quiet_libraries

    quiet_libraries()
    from lora_hpo.loader import load_spec
    from lora_hpo.summary import render
    from lora_hpo.tuner import _local_copy, locate_study, resume_study, storage_of

    study_dir = locate_study(args.study, args.storage_path)
    spec = load_spec(_local_copy(study_dir))
    if spec.search.strategy == "staged":
        return _staged(spec, args, storage_of(study_dir))
    tracker = _tracker(spec, args)
    result = resume_study(
        args.study, storage_path=args.storage_path, address=args.address, callbacks=[tracker]
    )
    print(render(result))
    print(tracker.summary())
    return 0 if result.best is not None else 1


def _tracker(spec: StudySpec, args: argparse.Namespace) -> MLflowTracker:
    """The study's MLflow tracker (``--tracking-uri``, else the spec's, else the defaults)."""
    from lora_hpo.tracking import MLflowTracker

    return MLflowTracker(spec, tracking_uri=args.tracking_uri)


def _add_cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local)")
    p.add_argument("--storage-path", help="results root: a path or an s3:// / nfs URI")


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-hpo", description="Search LoRA hyperparameters with Ray Tune, Optuna and MLflow."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check search-space files; report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_validate)

    p = sub.add_parser("show-space", help="print the compiled Optuna distributions")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_show_space)

    p = sub.add_parser("run", help="run a study on Ray Tune and show its progress")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set training.max_steps=50",
    )
    _add_cluster_flags(p)
    add_tracking_flag(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("resume", help="continue a killed study")
    p.add_argument("study", metavar="NAME_OR_PATH")
    _add_cluster_flags(p)
    add_tracking_flag(p)
    p.set_defaults(func=_resume)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later commands (run, resume, best, ...) register here from their own modules.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]
_EXTRA_COMMANDS.append(add_cluster_commands)  # submit, status, logs, stop: cluster_cli.py
_EXTRA_COMMANDS.append(add_results_commands)  # best, export: results_cli.py
_EXTRA_COMMANDS.append(add_insight_commands)  # report, transfer: insight_cli.py


def _shutdown_ray() -> None:
    """Stop the Ray runtime this command started (not one the caller already had running)."""
    tuner: Any = sys.modules.get("lora_hpo.tuner")
    if tuner is not None and tuner.STARTED_RAY:
        import ray

        ray.shutdown()
        tuner.STARTED_RAY = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (SpecError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _shutdown_ray()


if __name__ == "__main__":
    sys.exit(main())
