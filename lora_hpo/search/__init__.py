"""The search: ``study_runner`` is the one entry point (``run_study`` / ``resume_study``) that
picks the strategy and how trials execute (``trial_execution``); ``tune_study`` runs one Ray
Tune study (OptunaSearch + ASHA); ``ray_runtime`` connects to Ray; ``cluster_capacity`` waits
for a cluster to grow; ``study_storage`` places results (paths or URIs) and
``shared_storage`` checks every trial node reads them; ``strategies/`` holds single and
staged; ``study_result`` is what a study returns."""
