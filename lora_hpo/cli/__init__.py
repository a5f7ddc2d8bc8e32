"""The command line: ``main`` (the parser and exit codes), one module per command group
(``study``, ``results``, ``insight``, ``cluster``), the job-side entry on a cluster (``job``),
and the terminal view (``progress``, ``summary``, ``table``)."""
