"""Implementation of ``patterns.file_processing``: plain cores (functions, validation,
aggregation, parts, planner), the worker actor shell and the driver (runner)."""
