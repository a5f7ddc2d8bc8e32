"""Packed trials: K LoRA adapters, each its own Tune trial, training on one frozen base model
in one worker process (``search.pack``). ``layers`` route rows to adapters, ``model`` wraps
the base, ``adapter`` holds one adapter's training state, ``engine`` runs the packed steps,
``runner`` serves slots to trials, ``actor`` is the Ray worker and ``client`` the trial."""
