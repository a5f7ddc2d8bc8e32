"""Memory of a pack, measured on CPU: one process holding four MiniLM adapters on one base
(batch 16 x 32 tokens each) against one unpacked trial process, each in a fresh process, by
peak resident set size (``ru_maxrss``). The issue's bound: the pack <= 0.4 x four unpacked
trial processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = """
import copy, json, resource, sys
import torch
from tests.conftest import BASE_SPEC
from lora_hpo.spec.spec_loader import parse_spec
d = copy.deepcopy(BASE_SPEC)
d["data"].update(max_train_samples=200, max_eval_samples=32)
d["training"] = {"max_steps": 4, "eval_every": 2, "batch_size": 16}
d["search"]["scheduler"]["grace_period"] = 2
spec = parse_spec(d)
config = {"r": 8, "alpha_ratio": 1.0, "learning_rate": 1e-3}
if sys.argv[1] == "packed":
    from lora_hpo.training.pack.pack_engine import Engine
    engine = Engine(spec)
    adapters = [engine.add(f"t{i}", config | {"r": 4 * (1 + i % 2)}) for i in range(4)]
    while adapters[0].step < 4:
        engine.train_step(adapters)
        if engine.due(adapters[0]):
            engine.evaluate(adapters)
else:
    from lora_hpo.training.trainer_trial import run_trial
    run_trial(spec, config, lambda m, c: None)
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _peak(kind: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, kind],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak"])


def test_a_pack_of_four_needs_at_most_04_of_four_unpacked_trials() -> None:
    packed, alone = _peak("packed"), _peak("unpacked")
    ratio = packed / (4 * alone)
    print(f"pack of 4: {packed >> 20} MiB; one unpacked trial: {alone >> 20} MiB;"
          f" pack / (4 x unpacked) = {ratio:.2f}")  # fmt: skip
    assert ratio <= 0.4
