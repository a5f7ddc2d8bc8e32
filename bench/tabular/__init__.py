"""A tabular LoRA benchmark: a grid of real trials recorded once (``record``), committed as
data, and replayed by a simulator (``simulate``) that runs searchers through the real Optuna
samplers and Ray Tune's own ASHA scheduler, so comparing searchers over many seeds costs
seconds instead of hours."""
