"""Reading finished studies from MLflow (the system of record, not Ray's files): ``runs`` (the
client, the study metric, trial runs ranked by the shared rule), ``results`` (best configs,
the exported adapter), ``report`` (plots) and ``transfer`` (a config carried to another
model size)."""
