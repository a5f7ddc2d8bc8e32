"""Strategies: how a study's search is laid out in one or more Ray Tune studies. Each module
exposes ``run(spec, context, restore) -> StudyResult`` and uses the single-study runner
(``lora_hpo.search.tune_study.run_one``); ``lora_hpo.search.study_runner.STRATEGIES`` lists them."""
