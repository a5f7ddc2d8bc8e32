"""The tracker state on a URI: a save (done on Tune's driver thread at every record) writes
only the local mirror; the sender thread's sync uploads it; a load on another machine (another
cache) finds it, and the newer copy wins. A copy that does not parse is skipped (and the user
told) when the other one parses; when no copy parses, the study must not start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.files.small_files import write_text
from lora_hpo.tracking.tracker_state import StateFile, StateFileError
from tests.s3_server import BUCKET, S3, start
from tests.tracking.told_lines import Told


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = start()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in server.env.items():
            patch.setenv(key, value)
        yield server
    server.server.stop()


def test_saves_stay_local_until_the_sender_syncs(s3: S3, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path / "this-machine"))
    file = StateFile(f"s3://{BUCKET}/studies/st")
    for seq in range(1, 51):  # fifty records: no request to S3
        file.save({"seq": seq, "trials": {}})
    assert s3.keys("studies/st/") == []
    file.sync()  # the first sync uploads (the rate limit counts from the last upload)
    files = [k for k in s3.keys("studies/st/") if not k.endswith("/")]  # not pyarrow's dir marker
    assert files == ["studies/st/lora_hpo_mlflow.json"]
    file.save({"seq": 51, "trials": {}})
    file.sync()  # within SYNC_EVERY_S of the last upload: nothing sent
    assert '"seq": 50' in s3.text("studies/st/lora_hpo_mlflow.json")
    file.sync(force=True)  # at close
    assert '"seq": 51' in s3.text("studies/st/lora_hpo_mlflow.json")
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path / "another-machine"))
    assert StateFile(f"s3://{BUCKET}/studies/st").load() == {"seq": 51, "trials": {}}


def test_the_newer_copy_wins(s3: S3, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path / "cache"))
    file = StateFile(f"s3://{BUCKET}/studies/nw")
    file.save({"seq": 3})
    file.sync(force=True)
    file.save({"seq": 9})  # the driver died before this reached S3
    assert StateFile(f"s3://{BUCKET}/studies/nw").load() == {"seq": 9}


TRUNCATED = '{"seq": 7, "trials": {"a": {"run_id": "r'


def test_a_corrupt_copy_beside_a_good_one_is_skipped_and_told(
    s3: S3, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path / "cache"))
    file = StateFile(f"s3://{BUCKET}/studies/cc")
    file.save({"seq": 4, "trials": {}})
    file.sync(force=True)
    write_text(file.local, TRUNCATED)  # this machine's mirror, torn
    told = Told()
    assert file.load(told) == {"seq": 4, "trials": {}}
    (line,) = told.lines
    assert line.startswith(f"lora-hpo: the tracker state {file.local} does not parse (not JSON")
    assert line.endswith(f"characters); using the copy at {file.path}")
    file.save({"seq": 5, "trials": {}})
    write_text(file.path, "garbage")  # now the study directory's copy
    assert file.load(told) == {"seq": 5, "trials": {}}
    assert f"the tracker state {file.path} does not parse" in told.lines[-1]


def test_a_corrupt_only_copy_is_an_error(s3: S3, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LORA_HPO_CACHE", str(tmp_path / "cache"))
    file = StateFile(f"s3://{BUCKET}/studies/oc")
    write_text(file.path, TRUNCATED)  # no mirror on this machine
    with pytest.raises(StateFileError) as caught:
        file.load()
    assert f"the MLflow tracker state {file.path} exists but does not parse" in str(caught.value)
    assert f"move {file.path} to {file.path}.corrupt" in str(caught.value)
