"""MLflow as the system of record. ``study_tracking.StudyTracking`` tracks one study (any
strategy); ``mlflow_tracker.MLflowTracker`` is the driver-side Tune callback, which only queues
records in the ``record_outbox`` (its state in ``tracker_state``); one thread sends them
through the ``record_writer`` and ``mlflow_store`` (idempotent MLflow writes); ``run_lineage``
computes tags and the dataset input; ``champion_version`` registers the champion (an MLflow
model made by a caller-given ``ModelFolder``, else its bare adapter); ``parent_run`` is a
multi-stage study's parent run; ``study_plots`` draws the pictures a study's run carries."""
