"""The audit's result files: ``audit.csv``, ``audit.json``, ``curves.png``, ``report.html`` and ``manifest.json``.

``audit.csv`` is long format, one row per cell (plus one ``clean`` row per case and model, budget empty): the
case, model, attack, budget, mean Dice and HD95, 3-D SSIM, the metrics preset's SSIM, PSNR, L2 and L∞ of the
perturbation ([0, 1] intensity units of the model grid), voxel fooling rate, LPIPS, the precision the model passes
ran in (``precision_used``: fp32, bf16 or fp16), the attack's seconds and the cell's seconds, then
``dice[<class>]`` and ``hd95[<class>]`` per class. ``audit.json`` holds the same records (``cells``, ``clean``),
the ``summary`` (:func:`~SpectrumAttackLib.audit.summary.summarise`) and the ``manifest``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from SpectrumAttackLib.report.jsonable import dump_json

__all__ = ["AUDIT_RESULTS", "CSV_COLUMNS", "write_audit_csv", "write_audit_files"]

#: files an audit writes (an output folder holding any of them is refused without --overwrite or --resume).
AUDIT_RESULTS = ("audit.csv", "audit.json", "curves.png", "report.html", "manifest.json")

#: the fixed columns of ``audit.csv``, before the per-class ones.
CSV_COLUMNS = ("case", "model", "attack", "budget_name", "budget", "dice", "hd95", "ssim_3d", "ssim", "psnr", "l2",
               "linf", "fooling_rate", "lpips", "precision_used", "seconds", "cell_seconds")


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def write_audit_csv(path: Path, cells: Sequence[Mapping[str, Any]], clean: Sequence[Mapping[str, Any]]) -> None:
    """One row per clean record and per cell (see the module docstring)."""
    classes: list[str] = []
    for record in (*clean, *cells):
        classes += [n for n in (record.get("dice_per_class") or {}) if n not in classes]
    header = [*CSV_COLUMNS, *(f"dice[{n}]" for n in classes), *(f"hd95[{n}]" for n in classes)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in (*({**r, "attack": "clean"} for r in clean), *cells):
            row = [_value(record.get(column)) for column in CSV_COLUMNS]
            row += [_value((record.get("dice_per_class") or {}).get(n)) for n in classes]
            row += [_value((record.get("hd95_per_class") or {}).get(n)) for n in classes]
            writer.writerow(row)


def write_audit_files(folder: Path, cells: Sequence[Mapping[str, Any]], clean: Sequence[Mapping[str, Any]],
                      summary: Mapping[str, Any], manifest: Mapping[str, Any], title: str) -> None:
    """Write every result file into ``folder`` (the staging folder), ``audit.json`` and the manifest last."""
    from SpectrumAttackLib.report.audit_figure import write_curves
    from SpectrumAttackLib.report.audit_html import write_report

    write_audit_csv(folder / "audit.csv", cells, clean)
    write_curves(folder / "curves.png", summary, title)
    document = {"cells": list(cells), "clean": list(clean), "summary": summary, "manifest": manifest}
    write_report(folder / "report.html", document, folder / "curves.png", title)
    dump_json(folder / "audit.json", document)
    dump_json(folder / "manifest.json", manifest)
