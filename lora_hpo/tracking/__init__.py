"""MLflow as the system of record. ``study_tracking.StudyTracking`` tracks one study (any
strategy); ``mlflow_tracker.MLflowTracker`` is the driver-side Tune callback, which only queues
records in the ``record_outbox`` (its state in ``tracker_state``); one thread sends them
through the ``record_writer`` and ``mlflow_store`` (idempotent MLflow writes); ``run_lineage``
computes tags; ``parent_run`` is a multi-stage study's parent run; ``study_plots`` draws the
pictures a study's run carries."""
