"""The set-up time of the README's two commands on a fresh machine: each command's install
part (the venv, then each ``pip install``, exactly as the README writes them) from a fresh
clone of the committed tree, in a fresh venv with an empty pip cache.

    python -m bench.install [--out DIR]      # both commands: about 6 min on 2 cores

A source build is read from pip's own install report (``--report``, added to each
``pip install``): an installed item whose download is an archive other than a wheel. The
project itself, installed editable from the clone, is not counted. Aim (issue 15): the
quickstart's install builds nothing from source and takes <= 3 minutes; the test command's
install builds nothing from source. It writes <out>/install.json and install.md (default
bench/out/install/).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import machine
from bench.results_md import write_section

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("Quickstart", "Tests")  # the README's bold labels above its two commands
AIM_S = {"Quickstart": 180.0}
MARK = "@@bench-install"


def readme_commands(readme: str) -> dict[str, str]:
    """Each labelled command: the first ```bash block after its ``**Label**`` paragraph."""
    out = {}
    for label in COMMANDS:
        found = re.search(rf"\*\*{label}\*\*.*?```bash\n(.+?)\n```", readme, re.S)
        if not found:
            raise SystemExit(f"README.md: no ```bash block after **{label}**")
        out[label] = found.group(1).strip()
    return out


def install_part(command: str) -> list[str]:
    """The command's steps up to and including its last ``pip install``."""
    steps = [s.strip() for s in command.split("&&")]
    last = max(i for i, s in enumerate(steps) if s.startswith("pip install"))
    return steps[: last + 1]


def script(steps: list[str], reports: Path) -> str:
    """A bash script that runs the steps in order, each ``pip install`` writing its report,
    and prints a timestamp after each step."""
    lines = ["set -euo pipefail", f"echo {MARK} start $(date +%s.%N)"]
    for i, step in enumerate(steps):
        if step.startswith("pip install"):
            step += f" --report {shlex.quote(str(reports / f'{i}.json'))}"
        lines += [step, f"echo {MARK} {i} $(date +%s.%N)"]
    return "\n".join(lines) + "\n"


def source_builds(report: dict[str, Any]) -> list[str]:
    """The items of one pip report that pip built from a source archive."""
    built = []
    for item in report.get("install", []):
        info = item.get("download_info", {})
        if "dir_info" in info:  # a local folder: the project itself, editable
            continue
        if not info.get("url", "").endswith(".whl"):
            built.append(f"{item['metadata']['name']} ({info.get('url', '?')})")
    return built


def measure(label: str, command: str, clone: Path, work: Path) -> dict[str, Any]:
    steps = install_part(command)
    reports = work / label / "reports"
    reports.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"PIP_CACHE_DIR": str(work / label / "pip-cache"), "PIP_PROGRESS_BAR": "off"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    done = subprocess.run(
        ["bash", "-c", script(steps, reports)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    (work / label / "log.txt").write_text(done.stdout + done.stderr)
    marks = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith(MARK)]
    times = [float(t) for _, t in marks]
    pips = sorted(reports.glob("*.json"), key=lambda p: int(p.stem))
    loaded = [json.loads(p.read_text()) for p in pips]
    return {
        "steps": steps,
        "returncode": done.returncode,
        "total_s": times[-1] - times[0] if times else 0.0,
        "step_s": [b - a for a, b in itertools.pairwise(times)],
        "installed": sum(len(r.get("install", [])) for r in loaded),
        "source_builds": [b for r in loaded for b in source_builds(r)],
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        "## Fresh-clone set-up of the README's commands (`python -m bench.install`)",
        "",
        f"{machine.provenance(r)}, load before "
        f"{r['load_before'][0]:.2f}. Each command's install part (its steps up to its last "
        "`pip install`, as the README writes them) ran in a fresh clone of the commit, in a new "
        "venv with an empty pip cache. Source builds are read from pip's install reports "
        "(`--report`): items whose download is not a wheel (the project itself, editable, "
        "excepted).",
        "",
        "| command | install s | aim | each step s | packages installed | source builds |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in r["commands"].items():
        aim = AIM_S.get(label)
        ok = m["returncode"] == 0 and not m["source_builds"]
        verdict = "no source build" if aim is None else f"≤ {aim:.0f} s, no source build"
        if aim is not None:
            ok = ok and m["total_s"] <= aim
        steps = ", ".join(f"{s:.0f}" for s in m["step_s"])
        builds = ", ".join(m["source_builds"]) or "none"
        failed = "" if m["returncode"] == 0 else f" (exit {m['returncode']})"
        lines.append(
            f"| {label.lower()} | **{m['total_s']:.0f}**{failed} | {verdict}: "
            f"{'met' if ok else 'missed'} | {steps} | {m['installed']} | {builds} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "install")
    ap.add_argument(
        "--keep",
        type=Path,
        help="an empty folder to clone and install into, kept afterwards (<keep>/<command>/"
        "lora-hpo/.venv is then that command's install, to run other benches in)",
    )
    args = ap.parse_args()
    out = args.out.resolve()
    r = machine.describe(" ".join(["python", "-m", "bench.install", *sys.argv[1:]]))
    commands = readme_commands((REPO / "README.md").read_text())
    r["commands"] = {}
    with tempfile.TemporaryDirectory(prefix="lora-hpo-install-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        for label, command in commands.items():
            clone = root / label / "lora-hpo"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            started = time.time()
            r["commands"][label] = measure(label, command, clone, root / "work")
            print(f"{label}: {time.time() - started:.0f} s", flush=True)
    r["load_after"] = os.getloadavg()
    write_section(out, "install", r, render(r))


if __name__ == "__main__":
    main()
