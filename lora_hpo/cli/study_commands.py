"""``lora-hpo validate | show-space | run | resume``: checking a spec, and running a study.

``run`` and ``resume`` go through the study entry point (``lora_hpo.search.study_runner``), which
picks the strategy; this module only shows what happens: warnings, the live view, the summary
and where the records are. Heavy modules are imported when a command runs, so ``validate`` and
``show-space`` import neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from lora_hpo.cli.text_table import format_table
from lora_hpo.search.cluster_capacity import parse_duration
from lora_hpo.spec.local_checks import check_local
from lora_hpo.spec.pack_checks import explain_pack
from lora_hpo.spec.spec_errors import SpecError

if TYPE_CHECKING:
    from lora_hpo.search.study_result import StudyResult
    from lora_hpo.spec.spec_schema import StudySpec
    from lora_hpo.tracking.study_tracking import StudyTracking


def validate(args: argparse.Namespace) -> int:
    from lora_hpo.spec.spec_loader import load_spec

    problems = []
    for path in args.files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        local = check_local(spec, path)
        if local:
            problems.extend(local)
            continue
        warn(path, spec)
        print(f"ok: {path} (study {spec.name!r}, task {spec.task})")
        packing = explain_pack(spec.search, spec.resources)
        if packing:
            print(f"  {packing}")
    if problems:
        raise SpecError(problems)
    return 0


def warn(path: str, spec: StudySpec) -> None:
    """Print the spec's guardrail warnings to stderr."""
    from lora_hpo.spec.guardrails import guardrail_warnings

    for warning in guardrail_warnings(spec):
        print(f"warning: {path}: {warning}", file=sys.stderr)


def show_space(args: argparse.Namespace) -> int:
    from lora_hpo.spec.search_space import describe
    from lora_hpo.spec.spec_loader import load_spec

    spec = load_spec(args.file, args.set)
    print(f"study {spec.name!r}: {spec.task}, metric {spec.metric} ({spec.mode})")
    print(format_table(["param", "kind", "detail"], describe(spec.space)))
    print(_search_line(spec))
    print(_memory_line(spec))
    packing = explain_pack(spec.search, spec.resources)
    if packing:
        print(packing)
    return 0


def _search_line(spec: StudySpec) -> str:
    """The sampler and early stopping; for the lora sampler, where its prior is centred."""
    sch = spec.search.scheduler
    stop = {"asha": f"ASHA (grace {sch.grace_period}, rf {sch.reduction_factor:g})",
            "curve": f"on the learning curve (from step {sch.grace_period})",
            "none": "none"}[sch.type]  # fmt: skip
    line = f"search: sampler {spec.search.sampler}, early stopping {stop}"
    if spec.search.sampler != "lora":
        return line
    from lora_hpo.search.lora_prior import lora_prior, model_width

    prior, width = lora_prior(spec), model_width(spec)
    band = f"ranks {prior.rank_band[0]}-{prior.rank_band[1]}" if prior.rank_band else "any rank"
    size = f"hidden size {width}" if width else "hidden size unknown: the 7B reference"
    return (
        f"{line}; prior: step size lr x scale near {prior.step_size:.2g}"
        f" (x/÷ 10^{prior.step_sigma:g}; {size}, {spec.training.max_steps} steps), {band},"
        f" alpha/r near {prior.alpha_ratio:g}"
    )


def _memory_line(spec: StudySpec) -> str:
    """The per-trial memory estimate from the model folder's headers (no torch), when the
    folder is on this machine; else where it will be estimated."""
    from pathlib import Path

    from lora_hpo.spec.memory_estimate import describe_memory, shape_from_folder

    folder: Path | None = Path(spec.model.path) if spec.model.path else None
    if spec.model.demo is not None:
        from lora_hpo.training.demo_assets import existing_model_dir

        folder = existing_model_dir(spec.model.demo)
    shape = shape_from_folder(folder) if folder is not None else None
    if shape is None:
        return "memory per trial: estimated by the preflight of `lora-hpo run` (model not local)"
    return describe_memory(spec, shape)


def run(args: argparse.Namespace) -> int:
    """``lora-hpo run``; ``args.on_cluster``: the driver of a submitted job (``job_entry``),
    where the files a spec names are the cluster's."""
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
        view=view,
        resume_if_exists=args.resume_if_exists,
        launch=_launch(args, on_cluster),
    )
    return _finish(result, tracking)


def resume(args: argparse.Namespace) -> int:
    from lora_hpo.search.study_runner import resume_study

    tracking, view = _tracking_and_view(args)
    result = resume_study(
        args.study,
        storage_path=args.storage_path,
        tracking=tracking,
        view=view,
        launch=_launch(args),
    )
    return _finish(result, tracking)


def _launch(args: argparse.Namespace, on_cluster: bool = False) -> Any:
    from lora_hpo.search.study_runner import Launch

    wait = parse_duration(args.wait_for_resources)
    return Launch(address=args.address, wait_for_resources=wait, on_cluster=on_cluster)


def _tracking_and_view(args: argparse.Namespace) -> tuple[StudyTracking, Any]:
    from lora_hpo.training.quiet_logs import quiet_libraries

    quiet_libraries()
    from lora_hpo.cli.live_view import ProgressView
    from lora_hpo.tracking.study_tracking import StudyTracking

    return StudyTracking(args.tracking_uri), ProgressView


def _finish(result: StudyResult, tracking: StudyTracking) -> int:
    from lora_hpo.cli.study_summary import render

    print(render(result))
    print(tracking.summary())
    return 0 if result.best is not None else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("validate", help="check search-space files; report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=validate)

    p = sub.add_parser("show-space", help="print the compiled Optuna distributions")
    p.add_argument("file", metavar="FILE")
    add_set_flag(p)
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


def add_wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-for-resources",
        default="15m",
        metavar="DURATION",
        help="on a cluster that cannot run a trial yet, ask its autoscaler and wait this long"
        " (e.g. 90s, 15m, 1h; default 15m)",
    )
