"""lora-hpo against the tools its users would otherwise use, side by side: ``settings``,
``run`` (each part in a fresh process: ``part_lorahpo``, ``peer_hf``, the quickstart),
``figures`` (ratios from the parts) and ``render`` (the RESULTS.md body).
``python -m bench.overhead``."""
