"""The search: ``study.py`` is the one entry point (``run_study`` / ``resume_study``) that
picks the strategy; ``tuner.py`` runs one Ray Tune study (OptunaSearch + ASHA);
``runtime.py`` connects to Ray; ``storage.py`` places results (paths or URIs);
``strategies/`` holds single and staged; ``result.py`` is what a study returns."""
