"""An MLflow server that answers 5xx (not one that is down): a real ``mlflow server`` behind a
proxy (``tests/http_faults.py``) that answers 503, 500, 502 and a JSON 507 to every request
for a while. The tracker treats it as an outage: the records wait, the user is told once,
none is dropped, and all of them reach MLflow in order once the server answers again."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from lora_hpo.tracking.mlflow_store import CLIENT_ENV, classify
from lora_hpo.tracking.record_outbox import RETRIES, Outbox
from lora_hpo.tracking.record_writer import Writer
from lora_hpo.tracking.tracker_state import StateFile
from tests.http_faults import SICK, Answer, FaultProxy
from tests.tracking.told_lines import Told

pytestmark = pytest.mark.slow  # the session's mlflow server takes ~10 s to start

# beyond MLflow's own retry list (408, 429, 500, 502, 503, 504), with a JSON error body: the
# client raises it as a RestException, which the tracker used to retry 5 times, then drop
INSUFFICIENT_STORAGE = Answer(507, '{"error_code": "INTERNAL_ERROR", "message": "disk full"}')


@pytest.fixture
def proxy(mlflow_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    for key in CLIENT_ENV:  # the product's client settings (no retries, a 5 s timeout)
        monkeypatch.delenv(key, raising=False)
    with FaultProxy(mlflow_server.uri) as fronted:
        yield fronted


def log(step: int) -> dict[str, Any]:
    return {"op": "log", "trial": "a", "step": step, "ts": 1000 + step, "metrics": {"m": step}}


def test_a_server_answering_5xx_is_an_outage_and_loses_no_record(
    proxy: FaultProxy, mlflow_server: Any, tmp_path: Path
) -> None:
    experiment = f"sick-{uuid.uuid4().hex[:6]}"
    state: dict[str, Any] = {"study_key": uuid.uuid4().hex, "study": experiment, "trials": {}}
    state |= {"experiment_id": None, "parent_run_id": None}
    lock, told = threading.RLock(), Told()
    writer = Writer(proxy.uri, None, state, lock, (experiment, experiment), "x: 1\n")
    box = Outbox(state, StateFile(str(tmp_path)), writer, classify, proxy.uri, told, 0.05, lock)
    box.start()
    box.put({"op": "open_study", "params": {}, "tags": {"lora_hpo.role": "study"}})
    state["trials"]["a"] = {"run_id": None, "step": -1, "closed": False}
    box.put({"op": "open_trial", "trial": "a", "params": {"r": 8}, "tags": {}})
    box.put(log(1))
    assert box.flush(30) == 0
    answers = (*SICK, INSUFFICIENT_STORAGE)
    proxy.fail(answers)
    for step in range(2, 8):
        box.put(log(step))
    # every kind of answer, each more often than a record may be retried before a drop
    faults = len(answers) * (RETRIES + 1)
    assert proxy.wait_faults(faults, timeout_s=60) >= faults
    told.wait_for("is unreachable or failing")
    assert box.stats["dropped"] == 0 and [r["step"] for r in box.queue] == list(range(2, 8))
    proxy.heal()
    assert box.flush(30) == 0
    box.close()
    assert box.stats["dropped"] == 0 and box.stats["outages"] == 1
    assert told.count("is unreachable or failing") == 1 and told.count("is back after") == 1
    assert len(told.lines) == 2, told.lines
    history = MlflowClient(mlflow_server.uri).get_metric_history(
        state["trials"]["a"]["run_id"], "m"
    )
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.timestamp)] == [
        (s, s) for s in range(1, 8)
    ]


@pytest.mark.parametrize("answer", [*SICK, INSUFFICIENT_STORAGE], ids=lambda a: str(a.status))
def test_each_5xx_answer_is_classified_as_down(proxy: FaultProxy, answer: Answer) -> None:
    from lora_hpo.tracking.mlflow_store import Store

    store = Store(proxy.uri)
    proxy.fail((answer,))
    with pytest.raises(Exception) as caught:
        store.client.search_experiments(max_results=1)
    assert classify(caught.value) == "down", repr(caught.value)
