"""The benchmarks: they measure and print figures, and never pass or fail on time.
Run them from the repository root as modules: ``python -m bench.overhead``,
``python -m bench.search_quality``, ``python -m bench.trial_runner``; ``bench.results_md``
re-renders RESULTS.md."""
