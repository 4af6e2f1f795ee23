"""Robustness audit: the grid of attacks × budgets, the cell engine, the record store, the summary and the result
files. The entry point is :func:`SpectrumAttackLib.workflows.audit`."""
