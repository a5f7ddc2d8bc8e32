"""``lora-hpo``: the command line. Exit 0 on success, 2 on bad input, 1 on a runtime failure.

Each command's module is imported only when that command runs, so ``validate`` and
``show-space`` never import torch or ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lora_hpo.errors import SpecError, UsageError


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


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later commands (run, resume, best, ...) register here from their own modules.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


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


if __name__ == "__main__":
    sys.exit(main())
