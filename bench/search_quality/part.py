"""One method of the search-quality bench (bench/search_quality/run.py) in a fresh process: parse
the spec it is given, run it through ``run_study`` (which runs a staged spec's stages itself),
and write when it started and ended. The reports themselves stay in Ray Tune's result.json
files under the storage root, where curves.py reads them.

    python -m bench.search_quality.part --job JOB.json --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch  # noqa: F401  (import torch before ray.init: oneMKL aborts otherwise)
import transformers  # noqa: F401  (imported before the clock starts)

from lora_hpo.search.study import run_study
from lora_hpo.spec.loader import parse_spec
from lora_hpo.training.quiet import quiet_libraries


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run the job's spec on a fresh storage root; its start, end and what the study said."""
    spec = parse_spec(job["spec"], job["source"])
    storage = Path(job["storage"])
    shutil.rmtree(storage, ignore_errors=True)  # a rerun starts fresh, never resumes
    start = time.time()
    result = run_study(spec, storage_path=str(storage), tracking=False)
    end = time.time()
    return {
        "start": start,
        "end": end,
        "study_wall_s": end - start,
        "decision": result.decision,  # staged: why stage 2 used the rank it did
        "counts": result.counts,  # the last stage's trials by status
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", required=True, help="JSON: spec (a dict), source, storage")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    quiet_libraries()
    out = run(json.loads(Path(args.job).read_text()))
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
