"""The command line: ``main`` (the parser and exit codes), one module per command group
(``study_commands``, ``result_commands``, ``insight_commands``, ``cluster_commands``), the
job-side entry on a cluster (``job_entry``), and the terminal view (``live_view``,
``study_summary``, ``text_table``)."""
