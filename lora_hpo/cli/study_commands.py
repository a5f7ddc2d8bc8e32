"""``lora-hpo validate | show-space | run | resume``: checking a spec, and running a study.

``run`` and ``resume`` go through the study entry point (``lora_hpo.search.study_runner``), which
picks the strategy; this module only shows what happens: warnings, the live view, the summary
and where the records are (as text, or with ``--json`` as one JSON document on stdout). Heavy
modules are imported when a command runs, so ``validate`` and ``show-space`` import neither
torch nor Ray.
"""

from __future__ import annotations

import argparse
import functools
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from lora_hpo.cli.json_output import add_json_flag, emit, problem_docs
from lora_hpo.search.cluster_capacity import parse_duration
from lora_hpo.spec.local_checks import check_local
from lora_hpo.spec.pack_checks import explain_pack
from lora_hpo.spec.spec_errors import Problem, SpecError

if TYPE_CHECKING:
    from lora_hpo.search.study_result import StudyResult
    from lora_hpo.spec.spec_schema import StudySpec
    from lora_hpo.tracking.study_tracking import StudyTracking


def validate(args: argparse.Namespace) -> int:
    """Check every file; with ``--json``, one document: ``{"valid", "files": [{"file", "valid",
    "study", "task", "warnings", "packing"}], "problems": [{"file", "field", "message"}]}``
    (plus ``"error"``, the human message that stderr shows too, when a file is bad)."""
    from lora_hpo.spec.spec_loader import load_spec

    as_json = bool(getattr(args, "json", False))
    problems: list[Problem] = []
    files: list[dict[str, Any]] = []
    for path in args.files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            files.append({"file": path, "valid": False})
            continue
        local = check_local(spec, path)
        if local:
            problems.extend(local)
            files.append({"file": path, "valid": False})
            continue
        warnings = warn(path, spec)
        packing = explain_pack(spec.search, spec.resources)
        files.append({"file": path, "valid": True, "study": spec.name, "task": spec.task,
                      "warnings": warnings, "packing": packing})  # fmt: skip
        if not as_json:
            print(f"ok: {path} (study {spec.name!r}, task {spec.task})")
            if packing:
                print(f"  {packing}")
    if not as_json:
        if problems:
            raise SpecError(problems)
        return 0
    doc = {"valid": not problems, "files": files, "problems": problem_docs(problems)}
    if problems:
        error = SpecError(problems)
        print(f"error: {error}", file=sys.stderr)
        doc["error"] = str(error)
    emit(doc)
    return 2 if problems else 0


def warn(path: str, spec: StudySpec) -> list[str]:
    """Print the spec's guardrail warnings to stderr; return them."""
    from lora_hpo.spec.guardrails import guardrail_warnings

    warnings = list(guardrail_warnings(spec))
    for warning in warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)
    return warnings


def show_space(args: argparse.Namespace) -> int:
    from lora_hpo.cli import space_view
    from lora_hpo.spec.spec_loader import load_spec

    spec = load_spec(args.file, args.set)
    if getattr(args, "json", False):
        emit(space_view.document(spec))
    else:
        print(space_view.text(spec))
    return 0


def run(args: argparse.Namespace) -> int:
    """``lora-hpo run``; ``args.on_cluster``: the driver of a submitted job (``job_entry``),
    where the files a spec names are the cluster's."""
    with _stdout_kept_for_json(args):
        result, tracking = _run(args)
    return _finish(result, tracking, getattr(args, "json", False))


def _run(args: argparse.Namespace) -> tuple[StudyResult, StudyTracking]:
    from lora_hpo.spec.spec_loader import load_spec

    on_cluster = bool(getattr(args, "on_cluster", False))
    overrides = [*args.set, *(["search.warm_start=true"] if args.warm_start else [])]
    spec = load_spec(args.file, overrides)  # bad input fails here, before Ray starts
    from lora_hpo.search.study_runner import run_study

    local = check_local(spec, args.file, on_cluster=on_cluster)
    if local:
        raise SpecError(local)
    warn(args.file, spec)

    tracking, view = _tracking_and_view(args)
    result = run_study(
        spec,
        storage_path=args.storage_path,
        tracking=tracking,
        view=_view(view, args),
        resume_if_exists=args.resume_if_exists,
        launch=_launch(args, on_cluster),
    )
    return result, tracking


def resume(args: argparse.Namespace) -> int:
    from lora_hpo.search.study_runner import resume_study

    with _stdout_kept_for_json(args):
        tracking, view = _tracking_and_view(args)
        result = resume_study(
            args.study,
            storage_path=args.storage_path,
            tracking=tracking,
            view=_view(view, args),
            launch=_launch(args),
        )
    return _finish(result, tracking, getattr(args, "json", False))


def _stdout_kept_for_json(args: argparse.Namespace) -> AbstractContextManager[None]:
    """With ``--json``, the study's lines (preflight, tracking, Ray's) go to stderr, and stdout
    holds only the summary's JSON document."""
    from lora_hpo.cli.json_output import stdout_to_stderr

    return stdout_to_stderr() if getattr(args, "json", False) else nullcontext()


def _view(view: Any, args: argparse.Namespace) -> Any:
    """With ``--json``, the live view draws on stderr."""
    return functools.partial(view, stream=sys.stderr) if getattr(args, "json", False) else view


def _launch(args: argparse.Namespace, on_cluster: bool = False) -> Any:
    from lora_hpo.search.study_runner import Launch

    wait = parse_duration(args.wait_for_resources)
    return Launch(address=args.address, wait_for_resources=wait, on_cluster=on_cluster)


def _tracking_and_view(args: argparse.Namespace) -> tuple[StudyTracking, Any]:
    from lora_hpo.training.quiet_logs import quiet_libraries

    quiet_libraries()
    from lora_hpo.analysis.champion_model import champion_folder
    from lora_hpo.cli.live_view import ProgressView
    from lora_hpo.tracking.study_tracking import StudyTracking

    return StudyTracking(args.tracking_uri, model_folder=champion_folder), ProgressView


def _finish(result: StudyResult, tracking: StudyTracking, as_json: bool = False) -> int:
    from lora_hpo.cli import study_summary

    if as_json:
        emit(study_summary.document(result, tracking))
    else:
        print(study_summary.render(result))
        print(tracking.summary())
    return 0 if result.best is not None else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("validate", help="check search-space files; report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    add_json_flag(p, "each file's verdict, warnings and problems")
    p.set_defaults(func=validate)

    p = sub.add_parser("show-space", help="print the compiled Optuna distributions")
    p.add_argument("file", metavar="FILE")
    add_set_flag(p)
    add_json_flag(p, "the params, the search and the memory estimate")
    p.set_defaults(func=show_space)

    p = sub.add_parser("run", help="run a study on Ray Tune and show its progress")
    p.add_argument("file", metavar="FILE")
    add_set_flag(p)
    add_study_flags(p)
    p.add_argument(
        "--resume-if-exists",
        action="store_true",
        help="continue the study if the storage root already holds it (the same spec), as a"
        " retried job should; a different spec under the same name is refused",
    )
    p.add_argument(
        "--warm-start",
        action="store_true",
        help="start from earlier studies of the same base model in the MLflow store: their"
        " results where the data match, else their step size as the prior"
        " (as --set search.warm_start=true)",
    )
    p.set_defaults(func=run)

    p = sub.add_parser("resume", help="continue a killed study")
    p.add_argument("study", metavar="NAME_OR_PATH")
    add_study_flags(p)
    p.set_defaults(func=resume)


def add_set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set training.max_steps=50",
    )


def add_study_flags(p: argparse.ArgumentParser) -> None:
    from lora_hpo.cli.result_commands import add_tracking_flag

    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local)")
    p.add_argument(
        "--storage-path",
        help="results root: a path or a URI such as s3://bucket/studies; on a cluster, one"
        " every node reads (default: LORA_HPO_STORAGE, else ./lora-hpo-results)",
    )
    add_wait_flag(p)
    add_tracking_flag(p)
    add_json_flag(p, "the end-of-study summary", "; the live view and the log go to stderr")


def add_wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-for-resources",
        default="15m",
        metavar="DURATION",
        help="on a cluster that cannot run a trial yet, ask its autoscaler and wait this long"
        " (e.g. 90s, 15m, 1h; default 15m)",
    )
