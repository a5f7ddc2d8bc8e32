"""A trial's thread count follows the driver's file (lora_hpo.training.trial_threads): never below
its own share, never above the CPUs it may use; a missing or bad file changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lora_hpo.training import trial_threads as threads
from lora_hpo.training.trial_threads import LentThreads, read_count, write_count


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_count_is_written_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "threads"
    write_count(path, 3)
    assert read_count(path) == 3 and [p.name for p in tmp_path.iterdir()] == ["threads"]
    for bad in ("", "two", "0", "-1", "1.5"):
        path.write_text(bad)
        assert read_count(path) is None, bad
    assert read_count(tmp_path / "missing") is None


def test_the_trial_follows_the_file_within_its_bounds(
    tmp_path: Path, restore_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    path = tmp_path / "threads"
    torch.set_num_threads(1)
    shared = LentThreads(str(path), own=1)
    assert shared.poll() == 1  # no file yet: its own share
    write_count(path, 2)
    assert shared.poll() == 2 and torch.get_num_threads() == 2
    write_count(path, 64)
    assert shared.poll() == 4 and torch.get_num_threads() == 4  # the CPUs it may use
    path.write_text("garbage")
    assert shared.poll() == 4  # an unreadable count changes nothing
    write_count(path, 1)
    assert shared.poll() == 1 and torch.get_num_threads() == 1


def test_never_below_its_own_share(tmp_path: Path, restore_threads: None) -> None:
    path = tmp_path / "threads"
    write_count(path, 1)
    assert LentThreads(str(path), own=2).poll() == 2


def test_without_a_file_it_keeps_its_share() -> None:
    shared = LentThreads(None, own=1)
    assert shared.poll() == 1
