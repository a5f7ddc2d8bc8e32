"""MLflow as the system of record. ``study.StudyTracking`` tracks one study (any strategy);
``tracker.MLflowTracker`` is the driver-side Tune callback, which only queues records in the
``outbox``; one thread sends them through the ``writer`` and ``store`` (idempotent MLflow
writes); ``lineage`` computes tags; ``parent`` is a multi-stage study's parent run."""
