"""Running a study on a Ray cluster through the Jobs API: ``jobs_client`` (address, auth token,
client, errors) and ``job_payload`` (what a job carries: the embedded spec, allow-listed env,
the entrypoint; and its decoding on the cluster). The CLI commands are in
``lora_hpo.cli.cluster_commands`` and the job-side entry in ``lora_hpo.cli.job_entry``."""
