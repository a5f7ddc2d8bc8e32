"""``python -m bench.overhead``: see ``run.py``."""

from bench.overhead.run import main

main()
