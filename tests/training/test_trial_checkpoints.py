"""A trial's checkpoint, one format for unpacked and packed trials: the newest complete one is
resumed (a copy cut short is skipped); the training state reads back with ``weights_only``;
a trial restored from its final checkpoint reports it again."""

from __future__ import annotations

import copy
from pathlib import Path

import torch


def test_resume_takes_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    """Tune's snapshot can name a checkpoint older than the trial's newest, and the newest can
    be half-copied (a lost node): only one whose record's files are all there counts."""
    from ray import tune

    from lora_hpo.files.file_names import TRIAL_FILE
    from lora_hpo.spec.search_space import TrialParams
    from lora_hpo.training.trial_checkpoints import newest_checkpoint
    from lora_hpo.training.trial_report import write_record

    trial = tmp_path / "trial"
    params = TrialParams(4, 8.0, False, 1e-3, 0.0, "attention", "lora")
    for index in (2, 3, 4):
        folder = trial / f"checkpoint_{index:06d}"
        folder.mkdir(parents=True)
        for name in ("trainer_state.json", "adapter_model.safetensors"):
            (folder / name).write_text("{}" * index)
        write_record(folder, params, {"step": index}, None)
    (trial / "checkpoint_000004" / TRIAL_FILE).unlink()  # the record never arrived
    (trial / "checkpoint_000003" / "adapter_model.safetensors").unlink()  # the weights did not
    stale = tune.Checkpoint(str(trial / "checkpoint_000001"))  # older than all of them
    assert Path(newest_checkpoint(stale).path) == trial / "checkpoint_000002"
    (trial / "checkpoint_000003" / "adapter_model.safetensors").write_text("{}")  # too short
    assert Path(newest_checkpoint(stale).path) == trial / "checkpoint_000002"
    (trial / "checkpoint_000003" / "adapter_model.safetensors").write_text("{}" * 3)
    assert Path(newest_checkpoint(stale).path) == trial / "checkpoint_000003"


def test_training_state_reads_back_with_weights_only(tmp_path: Path) -> None:
    from transformers import get_scheduler

    from lora_hpo.training.trial_checkpoints import load_training_state, save_training_state

    weights = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weights], lr=0.1)
    schedule = get_scheduler("linear", optimizer, num_warmup_steps=1, num_training_steps=10)
    weights.grad = torch.ones(3)
    optimizer.step()
    schedule.step()
    more = {"order": {"gen": torch.Generator().get_state(), "pos": 3}, "loss": [0.5, 2]}
    save_training_state(tmp_path, optimizer, schedule, 7, more)
    fresh = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    fresh_schedule = get_scheduler("linear", fresh, num_warmup_steps=1, num_training_steps=10)
    step, back = load_training_state(tmp_path, fresh, fresh_schedule)
    assert step == 7 and back["loss"] == [0.5, 2] and back["order"]["pos"] == 3
    assert fresh_schedule.state_dict()["last_epoch"] == 1
    assert torch.equal(
        fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )


def test_a_final_checkpoint_is_reported_again(tmp_path: Path) -> None:
    from lora_hpo.spec.search_space import TrialParams
    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.training.trial_checkpoints import final_report
    from lora_hpo.training.trial_report import write_record
    from tests.conftest import BASE_SPEC

    spec = parse_spec(copy.deepcopy(BASE_SPEC), overrides=["training.max_steps=20"])
    params = TrialParams(4, 8.0, False, 1e-3, 0.0, "attention", "lora")
    write_record(tmp_path, params, {"step": 10}, None)
    assert final_report(tmp_path, spec) is None  # training goes on
    write_record(tmp_path, params, {"step": 20, "eval_loss": 0.5}, None)
    assert final_report(tmp_path, spec) == {"step": 20, "eval_loss": 0.5}
