"""Reading finished studies from MLflow (the system of record, not Ray's files): ``trial_runs``
(the client, the study metric, trial runs ranked by the shared rule), ``best_configs`` (best
configs, the exported adapter: ``export_bundle``, used by ``bundle_predict``),
``study_report`` (the pictures, again) and ``scale_transfer`` (a config carried to another
model size)."""
