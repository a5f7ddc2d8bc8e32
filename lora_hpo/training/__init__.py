"""One trial: the base model (cached per worker), the data (cached per worker), the LoRA
adapter, the optimizer and checkpoint rules a packed trial shares (``trial_optimizer``,
``trial_checkpoints``), the Trainer callback that reports, the divergence monitor, and the
Ray Tune trainable that wraps ``run_trial``. The offline demo sources live here too. Imports
torch and transformers lazily, so ``lora_hpo.training.trainer_trial`` costs nothing until a
trial runs.
"""

from lora_hpo.training.quiet_logs import silence_known

silence_known()
