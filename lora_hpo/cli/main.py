"""``lora-hpo``: the command line. Exit 0 on success, 2 on bad input, 1 on a runtime failure,
130 on SIGINT and 143 on SIGTERM (a study stops gracefully: ``lora-hpo resume`` continues it).

Each command group registers itself from its own module: ``study_commands`` (validate,
show-space, run, resume), ``result_commands`` (best, export, predict), ``insight_commands``
(report, transfer), ``cluster_commands`` (submit, status, logs, stop). Heavy modules are
imported only when a command runs. ``--version`` prints the versions; ``--json`` (validate,
show-space, run, resume, status, best) prints one JSON document on stdout (``json_output``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lora_hpo.cli import cluster_commands, insight_commands, result_commands, study_commands
from lora_hpo.cli.json_output import VersionAction, emit, error_doc
from lora_hpo.spec.spec_errors import SpecError, UsageError

GROUPS = (study_commands, result_commands, insight_commands, cluster_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-hpo", description="Search LoRA hyperparameters with Ray Tune, Optuna and MLflow."
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, on_cluster: bool = False) -> int:
    """``on_cluster``: this process is a submitted job's driver (``job_entry.py``), which ``run``
    tells its preflight and its Ray start."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.on_cluster = on_cluster
    try:
        return int(args.func(args))
    except (SpecError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            emit(error_doc(exc))
        return 2
    except KeyboardInterrupt as exc:  # Ctrl+C, or SIGTERM (search.driver_signals.Interrupted)
        return _interrupted(exc)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Say how the driver stopped, and how to continue a study it stopped; 128 + the signal."""
    import signal

    signum = int(getattr(exc, "signum", signal.SIGINT))
    where = getattr(exc, "where", "")
    line = f"interrupted by {signal.Signals(signum).name}"
    if where:
        line += f": the study's state is saved; continue it with `lora-hpo resume {where}`"
    print(line, file=sys.stderr)
    return 128 + signum
