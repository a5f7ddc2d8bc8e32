"""The memory estimate against what a real MiniLM trial process grows by (its resident set
size, sampled at every report), in a fresh process. Measured on this machine in development:
measured / estimated = 0.88 at batch 16 x 32 tokens, 1.3 at 16 x 128 and 32 x 128, 1.15 with
gradient checkpointing at 32 x 128; CPU RSS holds the allocator's caches and the data too,
so the stated tolerance is a factor of two either way."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = """
import copy, gc, json, sys
import psutil, torch, transformers
from tests.conftest import BASE_SPEC
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.memory_estimate import estimate_for, shape_from_folder
from lora_hpo.training.demo_assets import existing_model_dir, load_demo_dataset
seq, batch = int(sys.argv[1]), int(sys.argv[2])
d = copy.deepcopy(BASE_SPEC)
d["data"].update(max_train_samples=200, max_eval_samples=32, max_length=seq)
d["training"] = {"max_steps": 4, "eval_every": 2, "batch_size": batch}
d["search"]["scheduler"]["grace_period"] = 2
spec = parse_spec(d)
load_demo_dataset("bbc-news")
from lora_hpo.training.trainer_trial import run_trial
gc.collect()
proc = psutil.Process()
base, peak = proc.memory_info().rss, [0]
def report(m, c):
    peak[0] = max(peak[0], proc.memory_info().rss)
run_trial(spec, {"r": 8, "alpha_ratio": 1.0, "learning_rate": 1e-3}, report)
est = estimate_for(spec, shape_from_folder(existing_model_dir("minilm-l6")), 5).total
print(json.dumps({"measured": peak[0] - base, "estimate": est}))
"""


@pytest.mark.parametrize(("seq", "batch"), [(32, 16), (128, 16)])
def test_the_estimate_is_within_a_factor_of_two_of_measured_rss(seq: int, batch: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(seq), str(batch)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = got["measured"] / got["estimate"]
    print(f"seq {seq} batch {batch}: measured {got['measured'] >> 20} MiB,"
          f" estimated {got['estimate'] >> 20} MiB, ratio {ratio:.2f}")  # fmt: skip
    assert 0.5 <= ratio <= 2.0
