"""The metrics table node: clean vs adversarial Dice and HD95 per organ, image similarity, fooling rate, time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import vtk

__all__ = ["COLUMNS", "RUN_ATTRIBUTES", "metrics_rows", "metrics_table"]

#: Column names of the table, in order; "Clean" and "Adversarial" are numeric (NaN where undefined).
COLUMNS = ("Metric", "Structure", "Clean", "Adversarial", "Unit")

Row = tuple[str, str, float, float, str]


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def metrics_rows(metrics: Mapping[str, Any], seconds: float) -> list[Row]:
    """Rows ``(metric, structure, clean, adversarial, unit)`` from an engine metrics dictionary.

    Args:
        metrics: ``compute_case_metrics``'s dictionary: ``clean`` and ``adversarial`` sections with ``dice``,
            ``dice_per_class``, ``hd95``, ``hd95_per_class``; the adversarial one also ``ssim``, ``psnr`` and
            ``fooling_rate``; ``units`` with the HD95 unit. Values may be None (undefined).
        seconds: wall-clock time of the run.

    Returns:
        Per-organ Dice rows, the mean Dice, per-organ HD95 rows, the mean HD95, then SSIM, PSNR, fooling rate and
        seconds (image-level values have no clean column: NaN).
    """
    clean = metrics.get("clean", {})
    adversarial = metrics.get("adversarial", {})
    hd95_unit = metrics.get("units", {}).get("hd95", "")
    nan = float("nan")
    rows: list[Row] = []
    for metric, key, unit in (("Dice", "dice", ""), ("HD95", "hd95", hd95_unit)):
        per_clean = clean.get(f"{key}_per_class", {}) or {}
        per_adv = adversarial.get(f"{key}_per_class", {}) or {}
        for organ in list(dict.fromkeys([*per_clean, *per_adv])):
            rows.append((metric, organ, _number(per_clean.get(organ)), _number(per_adv.get(organ)), unit))
        rows.append((metric, "mean", _number(clean.get(key)), _number(adversarial.get(key)), unit))
    rows.append(("SSIM", "image", nan, _number(adversarial.get("ssim")), ""))
    rows.append(("PSNR", "image", nan, _number(adversarial.get("psnr")), "dB"))
    rows.append(("Fooling rate", "voxels", nan, _number(adversarial.get("fooling_rate")), "fraction"))
    rows.append(("Time", "run", nan, float(seconds), "s"))
    return rows


#: Run facts kept as attributes ``SpectrumAttack.<key>`` of the table node (saved with the scene).
RUN_ATTRIBUTES = ("precision", "precision_used")


def metrics_table(scene: object, metrics: Mapping[str, Any], seconds: float, name: str) -> object:
    """A new ``vtkMRMLTableNode`` in ``scene`` with :func:`metrics_rows` (columns :data:`COLUMNS`).

    The :data:`RUN_ATTRIBUTES` found in ``metrics`` (what precision the model passes ran in) become node attributes
    ``SpectrumAttack.precision`` and ``SpectrumAttack.precision_used``.
    """
    rows = metrics_rows(metrics, seconds)
    table = vtk.vtkTable()
    columns = []
    for column in COLUMNS:
        array = vtk.vtkDoubleArray() if column in ("Clean", "Adversarial") else vtk.vtkStringArray()
        array.SetName(column)
        array.SetNumberOfValues(len(rows))
        table.AddColumn(array)
        columns.append(array)
    for index, row in enumerate(rows):
        for array, value in zip(columns, row, strict=True):
            array.SetValue(index, value)
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    node.SetAndObserveTable(table)
    for key in RUN_ATTRIBUTES:
        if metrics.get(key) is not None:
            node.SetAttribute(f"SpectrumAttack.{key}", str(metrics[key]))
    return node
