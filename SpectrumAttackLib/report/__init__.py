"""Run reports: per-case figures, run manifests, progress bars and strict JSON.

Import the submodules directly (``from SpectrumAttackLib.report.figure import write_case_report``); this package
imports nothing itself so that light users (JSON helpers) do not pay for matplotlib.
"""
