"""MLflow tracking for one study, whatever its strategy: one ``MLflowTracker`` (a Tune
callback) per Ray Tune study, and, when a strategy runs several studies, a parent run that
they nest under. The study entry point (``lora_hpo.search.study_runner``) hands this to strategies;
the CLI prints its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.tracking.champion_version import ModelFolder
from lora_hpo.tracking.mlflow_store import Store
from lora_hpo.tracking.mlflow_tracker import MLflowTracker
from lora_hpo.tracking.parent_run import ParentRun, StagedFacts
from lora_hpo.tracking.study_plots import Trial, draw_report
from lora_hpo.tracking.warm_start import WarmStart, find_warm_start


class StudyTracking:
    """``tracking_uri``: ``--tracking-uri``; else each spec's ``tracking.tracking_uri``, else
    MLFLOW_TRACKING_URI, else ``./mlflow.db``. ``model_folder``: makes the champion's MLflow
    model (the CLI passes ``lora_hpo.analysis.champion_model.champion_folder``); without it
    the champion is registered as its bare adapter folder."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        stream: TextIO | None = None,
        flush_timeout_s: float = 60.0,
        model_folder: ModelFolder | None = None,
    ) -> None:
        self.tracking_uri, self.stream, self.flush_timeout_s = tracking_uri, stream, flush_timeout_s
        self.model_folder = model_folder
        self.trackers: list[MLflowTracker] = []
        self.parent: ParentRun | None = None
        self.report_line = ""  # where the study's pictures went, for the summary
        self.warm: dict[str, WarmStart] = {}  # by study name: what its warm start found

    def warm_start(self, spec: StudySpec) -> WarmStart:
        """The earlier studies in this store that ``spec`` can start from (``warm_start``);
        none when the store cannot be read (the study then starts cold, and says why)."""
        from lora_hpo.tracking.mlflow_store import configure_client_env, resolve_tracking_uri

        configure_client_env()
        uri, _ = resolve_tracking_uri(self.tracking_uri, spec.tracking.tracking_uri)
        try:
            found = find_warm_start(spec, uri)
        except Exception as exc:
            found = WarmStart("none", error=f"{type(exc).__name__}: {exc}"[:300])
        self.warm[spec.name] = found
        return found

    def callbacks(
        self, spec: StudySpec, study_dir: str, parent_run_id: str | None = None
    ) -> list[Any]:
        """The Tune callbacks that track one study kept in ``study_dir``."""
        warm = self.warm.get(spec.name)
        tracker = MLflowTracker(
            spec,
            self.tracking_uri,
            state_dir=study_dir,
            flush_timeout_s=self.flush_timeout_s,
            stream=self.stream,
            parent_run_id=parent_run_id,
            study_run_tags=warm.tags() if warm is not None else None,
            model_folder=self.model_folder,
        )
        self.trackers.append(tracker)
        return [tracker]

    def open_parent(self, spec: StudySpec, key: str) -> str | None:
        """Find (on resume) or create the parent run named by ``key``; its id, or None when
        MLflow cannot be reached (the studies are then tracked on their own)."""
        self.parent = ParentRun(spec, self.tracking_uri, self.stream)
        self.parent.start(key)
        return self.parent.run_id

    def close_parent(self, facts: StagedFacts) -> None:
        if self.parent is not None:
            self.parent.finish(facts)

    @property
    def run_id(self) -> str | None:
        """The study-level run: the parent, else the (last) study's own run."""
        if self.parent is not None and self.parent.run_id is not None:
            return self.parent.run_id
        for tracker in reversed(self.trackers):
            if tracker.state.get("parent_run_id"):
                return str(tracker.state["parent_run_id"])
        return None

    def log_report(self, spec: StudySpec, trials: list[Trial]) -> None:
        """Draw the study's pictures (``study_plots``) from its trials and log them under
        ``report/`` on the study's run; a problem is a warning, never the study's failure."""
        run_id = self.run_id
        if run_id is None or not self.trackers or not any(t.curve for t in trials):
            return
        try:
            with Scratch("report") as tmp:
                draw_report(spec.name, trials, spec.metric, spec.mode, Path(tmp))
                Store(self.trackers[-1].uri).client.log_artifacts(run_id, tmp, "report")
        except Exception as exc:  # a plotting or MLflow problem must not fail a finished study
            self.report_line = f"warning: could not log the report to MLflow: {exc}"
        else:
            self.report_line = f"report: logged under report/ on MLflow run {run_id}"

    def summary(self) -> str:
        """Where the records are, the champion, and the report."""
        lines = [self.parent.summary()] if self.parent is not None else []
        if self.trackers:
            tracker_lines = self.trackers[-1].summary().splitlines()
            if self.parent is not None:  # the parent names the champion of all stages
                crowned = self.parent.champion is not None
                tracker_lines = [
                    x for x in tracker_lines[1:] if not (crowned and x.startswith("champion:"))
                ]
            lines += tracker_lines
        return "\n".join([*lines, self.report_line] if self.report_line else lines)
