"""The benchmarks: they measure and print figures, and never pass or fail on time.
Run them from the repository root as modules: ``python -m bench.tabular.simulate``,
``python -m bench.packed``, ``bash bench/gpu_check.sh``; ``python -m bench.results_md``
re-composes RESULTS.md (bench/README.md lists them all)."""
