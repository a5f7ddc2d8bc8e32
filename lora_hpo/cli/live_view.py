"""A live, readable progress view: one row per trial, redrawn in place on a terminal, and a
line per change of status elsewhere (logs, CI). A Ray Tune callback on the driver."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from lora_hpo.cli.text_table import format_table
from lora_hpo.search.trial_failures import trial_error
from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.trial_outcome import trial_status

PARAM_COLUMNS = ("r", "lora_alpha", "use_rslora", "learning_rate")
REASON_CHARS = 90  # a failed trial's reason, cut to fit a row


def short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def trial_row(spec: StudySpec, trial: Any) -> list[str]:
    """trial id, params, step, metric, status."""
    last = trial.last_result or {}
    params = derive(spec.space, trial.config)
    metric = last.get(f"{spec.metric}_raw", last.get(spec.metric))
    status = trial_status(trial.status, last, spec.training.max_steps)
    if status == "failed":
        kind, message = trial_error(trial) or ("Error", "")
        status = f"failed: {kind}: {message}"[:REASON_CHARS]
    return [
        trial.trial_id,
        str(params.r),
        short(params.lora_alpha),
        "yes" if params.use_rslora else "no",
        f"{params.learning_rate:.2e}",
        str(last.get("step", "-")),
        short(metric) if metric is not None else "-",
        status,
    ]


class ProgressView(Callback):  # type: ignore[misc]
    interrupted = False  # set when SIGINT or SIGTERM stops the study (search.driver_signals)

    def __init__(self, spec: StudySpec, stream: TextIO | None = None) -> None:
        self.spec = spec
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._drawn = 0
        self._last_draw = 0.0
        self._status: dict[str, str] = {}
        self._running: set[str] = set()  # running at the last update: a signal stops them

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the run config with callbacks
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"])  # type: ignore[misc]

    def header(self) -> list[str]:
        return ["trial", "r", "alpha", "rsLoRA", "lr", "step", self.spec.metric, "status"]

    def _draw(self, trials: list[Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 1.0:
            return
        self._last_draw = now
        rows = [self._row(t) for t in trials]
        text = format_table(self.header(), rows)
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = text.count("\n") + 1

    def _changes(self, trials: list[Any]) -> None:
        for t in trials:
            row = self._row(t)
            if self._status.get(t.trial_id) != row[-1]:
                self._status[t.trial_id] = row[-1]
                cells = ", ".join(
                    f"{h}={v}" for h, v in zip(self.header()[1:], row[1:], strict=True)
                )
                self.stream.write(f"[{time.strftime('%H:%M:%S')}] {row[0]}: {cells}\n")
                self.stream.flush()

    def _row(self, trial: Any) -> list[str]:
        """The trial's row; one that a signal stopped says so, not "stopped_early"."""
        row = trial_row(self.spec, trial)
        if self.interrupted and trial.trial_id in self._running and row[-1] == "stopped_early":
            row[-1] = "interrupted"
        return row

    def _update(self, trials: list[Any], force: bool = False) -> None:
        if self.live:
            self._draw(trials, force)
        else:
            self._changes(trials)
        if not self.interrupted:
            self._running = {t.trial_id for t in trials if t.status == "RUNNING"}

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._update(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._update(trials, force=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._update(trials, force=True)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._update(trials, force=True)
