"""``SpectrumAttackLogic.audit`` on a real slicer-core scene: a table node, plot charts of the curves, the summary."""

from __future__ import annotations

from typing import Any

import numpy as np
from slicer_helpers import ijk_array, load_volume

GRID = {"attacks": {"pgd": {"eps": [2, 16], "params": {"steps": 1}}, "dfb": {"freq_band": ["high"]}}}


def test_audit_adds_a_table_and_plot_charts_and_returns_the_summary(module: Any, scene: Any, ct_node: Any,
                                                                     sample_ct: dict, tiny_loaded: Any) -> None:
    before = ijk_array(ct_node).copy()
    labelmap = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    logic = module.SpectrumAttackLogic()
    summary = logic.audit(ct_node, model={"tiny": tiny_loaded}, preset=GRID, referenceSegmentation=labelmap)
    assert np.array_equal(ijk_array(ct_node), before)  # the input is never modified

    own = summary["per_model"]["tiny"]
    assert summary["levels"] == ["0.99", "0.95", "0.90"]
    assert own["clean_dice"] >= own["robust_dice"]["0.99"] >= own["robust_dice"]["0.90"]
    assert [p["budget"] for p in own["attacks"]["pgd"]["curve"]] == [2, 16]

    table = scene.GetNodeByID(summary["nodes"]["table"])
    assert table.IsA("vtkMRMLTableNode") and table.GetNumberOfRows() == 3
    assert table.GetCellText(0, 2) == "pgd" and table.GetCellText(2, 4) == "high"
    dice = table.GetTable().GetColumnByName("Dice")
    assert [dice.GetValue(i) for i in range(3)] == [own["attacks"]["pgd"]["curve"][0]["dice"],
                                                   own["attacks"]["pgd"]["curve"][1]["dice"],
                                                   own["attacks"]["dfb"]["curve"][0]["dice"]]

    charts = [scene.GetNodeByID(i) for i in summary["nodes"]["charts"]]
    assert all(c.IsA("vtkMRMLPlotChartNode") for c in charts)
    ssim_chart, pgd_chart = charts  # Dice vs SSIM (all attacks) and Dice vs eps (PGD); DFB's bands are no axis
    assert ssim_chart.GetNumberOfPlotSeriesNodes() == 2 and pgd_chart.GetNumberOfPlotSeriesNodes() == 1
    series = pgd_chart.GetNthPlotSeriesNode(0)
    assert series.IsA("vtkMRMLPlotSeriesNode") and series.GetXColumnName() == "Budget"
    curve = series.GetTableNode().GetTable()
    assert [curve.GetColumnByName("Budget").GetValue(i) for i in range(2)] == [2.0, 16.0]
    ssim = ssim_chart.GetNthPlotSeriesNode(0).GetTableNode().GetTable().GetColumnByName("SSIM 3D")
    assert 0 < ssim.GetValue(1) < ssim.GetValue(0) <= 1


def test_audit_with_the_corruption_track_fills_the_same_table_and_chart(module: Any, scene: Any, ct_node: Any,
                                                                         tiny_loaded: Any) -> None:
    logic = module.SpectrumAttackLogic()
    summary = logic.audit(ct_node, model={"tiny": tiny_loaded}, preset={"attacks": {"gn": {"std": [8]}}},
                          corruptions={"gamma": {"severity": [1, 4]}})
    track = summary["per_model"]["tiny"]["corruptions"]
    assert [p["severity"] for p in track["per_corruption"]["gamma"]["curve"]] == [1, 4]
    assert track["overall"] is not None and track["degradation"] is not None
    table = scene.GetNodeByID(summary["nodes"]["table"])
    assert table.GetNumberOfRows() == 3
    assert [table.GetCellText(i, 2) for i in range(3)] == ["gn", "gamma", "gamma"]
    assert [table.GetCellText(i, 3) for i in range(1, 3)] == ["severity", "severity"]
    ssim_chart = scene.GetNodeByID(summary["nodes"]["charts"][0])
    names = [ssim_chart.GetNthPlotSeriesNode(i).GetName() for i in range(ssim_chart.GetNumberOfPlotSeriesNodes())]
    assert names == ["gn", "corruption gamma"]
