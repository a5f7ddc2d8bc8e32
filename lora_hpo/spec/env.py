"""The environment variables lora-hpo sets for others, in one place: the settings Ray's trial
workers need (they must travel in a submitted job's runtime_env, since a job ignores the
driver's ``ray.init(runtime_env=...)``), and the marker of the job-side driver."""

from __future__ import annotations

# A reused actor waits this long for its finished trial's thread before it takes the next.
WORKER_ENV = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "30"}
JOB_ENV = "LORA_HPO_JOB"  # "1" in the driver of a submitted study (lora_hpo.cli.job)
# A folder where a local Ray's prestarted workers mark that they have imported the trial's
# modules (lora_hpo.training.preload); set by the driver that starts that Ray.
PRELOADED_ENV = "LORA_HPO_PRELOADED"
