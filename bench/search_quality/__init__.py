"""Search quality at equal compute with real studies: ``settings`` (methods, tasks, specs),
``run`` (each method in a fresh process), ``curves`` (reading studies back, anytime curves),
``render`` (the RESULTS.md section). ``python -m bench.search_quality``."""
