"""Failed trials, explained: distinct failures with counts and where the full error is; a study
whose first attempts all fail alike stops, and resumes once the cause is fixed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch  # noqa: F401  (before ray)

from lora_hpo.search.study_runner import resume_study, run_study
from lora_hpo.search.trial_failures import (
    Failure,
    FailureWatch,
    StudyFailing,
    signature,
    summarize_failures,
)
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import tiny_study


def test_signature_is_the_type_and_first_line_of_the_trials_own_error() -> None:
    class Wrapped(Exception):
        def __init__(self, cause: Exception) -> None:
            super().__init__("ray::ImplicitFunc.train() ...\nTraceback ...")
            self.cause = cause

    assert signature(Wrapped(ValueError("bad rows\nmore detail"))) == ("ValueError", "bad rows")
    assert signature(KeyError("x")) == ("KeyError", "'x'")


def test_distinct_failures_are_counted_most_frequent_first() -> None:
    errors = [(("A", "x"), "/a"), (("B", "y"), "/b"), (("A", "x"), "/c")]
    assert summarize_failures(errors) == [Failure("A", "x", 2, "/a"), Failure("B", "y", 1, "/b")]
    assert Failure("A", "x", 2, "/a").line() == "2 trials: A: x (full error: /a)"


def test_a_trial_node_that_cannot_see_the_storage_stops_the_study_as_bad_input(
    tmp_path: Path,
) -> None:
    """A node that joined after the study's own storage check: Ray's error at the trial's
    first checkpoint stops the study at once (no retry), naming --storage-path."""

    class Trial:
        error_file = str(tmp_path / "error.txt")
        pickled_error_file = None
        path = str(tmp_path)

    Path(Trial.error_file).write_text(
        "Traceback ...\nRuntimeError: Unable to set up cluster storage with the following"
        " settings: StorageContext<...>\n"
    )
    watch = FailureWatch(storage="/home/me/lora-hpo-results")
    with pytest.raises(StudyFailing):
        watch.on_trial_recover(0, [], Trial())  # its first attempt: Tune would retry it
    assert watch.bad_input
    assert watch.reason.startswith("--storage-path: a trial node cannot read '/home/me/")
    assert "s3://" in watch.reason and "Unable to set up cluster storage" in watch.reason


@pytest.mark.slow
def test_a_study_whose_first_attempts_fail_alike_stops_and_resumes(
    tiny_assets: Path, tmp_path: Path
) -> None:
    import ray

    model = tmp_path / "model"
    shutil.copytree(tiny_assets / "model", model)
    weights = model / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:64])  # the config and tokenizer load; the weights do not
    data = tiny_study(tiny_assets, **{"search.num_samples": 4, "search.max_failures": 2})
    data["model"] = {"path": str(model)}
    spec = parse_spec(data)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        stopped = run_study(spec, storage_path=str(tmp_path / "out"), tracking=False)
        assert stopped.best is None and "first 3 trial attempts all failed" in stopped.stopped
        (failure,) = stopped.failures
        assert failure.kind == "SafetensorError" and failure.count == 3
        assert Path(failure.error_file).is_file()
        weights.write_bytes(good)  # the user fixes the cause and resumes
        done = resume_study("tiny", storage_path=str(tmp_path / "out"), tracking=False)
    finally:
        ray.shutdown()
    assert len(done.trials) == 4 and done.best is not None and not done.failures
