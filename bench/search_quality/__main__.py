"""``python -m bench.search_quality``: see ``run.py``."""

from bench.search_quality.run import main

main()
