"""An audit's results as MRML nodes: one table of cells and plot charts of its curves.

- the cells table (``vtkMRMLTableNode``): one row per cell (model, case, attack, budget, Dice, 3-D SSIM, PSNR, L∞,
  fooling rate, seconds);
- one curve table per model and attack (budget, mean Dice, mean 3-D SSIM), the data of the plot series;
- a chart "Dice vs 3-D SSIM" (``vtkMRMLPlotChartNode``) with one series per model and attack: every attack family
  on the same axes, the fair comparison; and one chart "Dice vs <budget>" per attack with numeric budgets, one
  series per model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import vtk

__all__ = ["CELL_COLUMNS", "audit_nodes"]

#: columns of the cells table; the numeric ones hold NaN where a value is undefined.
CELL_COLUMNS = ("Model", "Case", "Attack", "Budget parameter", "Budget", "Dice", "SSIM 3D", "PSNR", "Linf",
                "Fooling rate", "Seconds")
_TEXT = ("Model", "Case", "Attack", "Budget parameter", "Budget")
_KEYS = {"Dice": "dice", "SSIM 3D": "ssim_3d", "PSNR": "psnr", "Linf": "linf", "Fooling rate": "fooling_rate",
         "Seconds": "seconds"}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _table(scene: Any, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], text: Sequence[str]) -> Any:
    table = vtk.vtkTable()
    arrays = []
    for column in columns:
        array = vtk.vtkStringArray() if column in text else vtk.vtkDoubleArray()
        array.SetName(column)
        array.SetNumberOfValues(len(rows))
        table.AddColumn(array)
        arrays.append(array)
    for index, row in enumerate(rows):
        for array, column, value in zip(arrays, columns, row, strict=True):
            array.SetValue(index, str(value) if column in text else _number(value))
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    node.SetAndObserveTable(table)
    return node


def _chart(scene: Any, title: str, x_title: str, series: Sequence[tuple[str, Any, str, str]]) -> Any:
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(title))
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_title)
    chart.SetYAxisTitle("mean Dice")
    for label, table, x_column, y_column in series:
        node = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{title}: {label}"))
        node.SetAndObserveTableNodeID(table.GetID())
        node.SetXColumnName(x_column)
        node.SetYColumnName(y_column)
        node.SetPlotType(node.PlotTypeScatter)
        node.SetMarkerStyle(node.MarkerStyleCircle)
        node.SetUniqueColor()
        node.SetName(label)
        chart.AddAndObservePlotSeriesNodeID(node.GetID())
    return chart


def audit_nodes(scene: Any, cells: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], name: str
                ) -> dict[str, Any]:
    """Add the audit's table, curve tables and charts to ``scene``.

    Returns:
        ``{"table": cells table node, "curves": [curve table nodes], "charts": [chart nodes], "ssimChart": the
        Dice-vs-SSIM chart}``.
    """
    rows = [[c["model"], c["case"], c["attack"], c["budget_name"], c["budget"],
             *(c.get(key) for key in _KEYS.values())] for c in cells]
    table = _table(scene, f"{name} audit", CELL_COLUMNS, rows, _TEXT)
    curves, ssim_series, budget_series = [], [], {}
    for model in summary["models"]:
        for attack, entry in summary["per_model"][model]["attacks"].items():
            numeric = all(isinstance(p["budget"], (int, float)) for p in entry["curve"])
            columns = ("Budget", "Dice", "SSIM 3D")
            curve = _table(scene, f"{name} audit curve {model} {attack}", columns,
                           [[p["budget"] if numeric else i, p["dice"], p["ssim_3d"]]
                            for i, p in enumerate(entry["curve"])], ())
            curves.append(curve)
            label = attack if len(summary["models"]) == 1 else f"{attack} ({model})"
            ssim_series.append((label, curve, "SSIM 3D", "Dice"))
            if numeric:
                budget_series.setdefault((attack, entry["budget_name"]), []).append((model, curve, "Budget", "Dice"))
        track = (summary["per_model"][model].get("corruptions") or {}).get("per_corruption", {})
        for corruption, entry in track.items():  # the corruption track on the same Dice-vs-SSIM axes
            curve = _table(scene, f"{name} audit corruption {model} {corruption}", ("Severity", "Dice", "SSIM 3D"),
                           [[p["severity"], p["dice"], p["ssim_3d"]] for p in entry["curve"]], ())
            curves.append(curve)
            label = f"corruption {corruption}" + ("" if len(summary["models"]) == 1 else f" ({model})")
            ssim_series.append((label, curve, "SSIM 3D", "Dice"))
    ssim_chart = _chart(scene, f"{name} audit: Dice vs 3-D SSIM", "mean 3-D SSIM", ssim_series)
    charts = [ssim_chart] + [_chart(scene, f"{name} audit: {attack} Dice vs {budget}", budget, series)
                             for (attack, budget), series in budget_series.items()]
    return {"table": table, "curves": curves, "charts": charts, "ssimChart": ssim_chart}
