"""Packed trials: K LoRA adapters, each its own Tune trial, training on one frozen base model
in one worker process (``search.pack``). ``packed_layers`` route rows to adapters,
``packed_model`` wraps the base, ``packed_adapter`` holds one adapter's training state (by the
rules of ``training.trial_optimizer`` and ``training.trial_checkpoints``), ``pack_engine`` runs
the packed steps, ``pack_runner`` serves slots to trials, ``pack_actor`` is the Ray worker and
``pack_client`` the trial."""
