"""``SpectrumAttackLogic.harden`` on a real slicer-core scene: the sample CT and its labels read by Slicer's storage
node, the catalogue model ``unet-btcv-3mm`` as a tiny UNet (``tiny_catalogue``), a few iterations."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import slicer
from slicer_helpers import ijk_array, load_volume

pytest.importorskip("torch")

#: a one-cell audit grid for the before/after comparison (cheap, still an attack)
GRID = {"attacks": {"fgsm": {"eps": [4]}}}
QUICK = {"steps": 1, "q_max": 20.0}


def _ids(scene: Any) -> set[str]:
    """IDs of the scene's data nodes (singletons such as the module's parameter node, and the subject hierarchy,
    which Slicer makes on first use, left out)."""
    nodes = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    return {n.GetID() for n in nodes if not n.IsSingleton() and not n.IsA("vtkMRMLSubjectHierarchyNode")}


@pytest.fixture(autouse=True)
def private_temp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of this test's own (``tempfile``'s default), so that other runs cannot blur the checks."""
    folder = tmp_path_factory.mktemp("temp")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _temp_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("SpectrumAttack-*")}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name or "replaced" in p.name)


@pytest.mark.slow  # two training iterations and three small audits
def test_harden_writes_a_model_that_loads_differs_and_is_listed(module: Any, scene: Any, ct_node: Any,
                                                                sample_ct: dict, tiny_catalogue: Path,
                                                                tmp_path: Path) -> None:
    import torch

    from SpectrumAttackLib.models import load_model

    labels = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    voxels = ijk_array(ct_node).copy()
    before_temp = _temp_folders()
    logic = module.SpectrumAttackLogic()
    reports: list[Any] = []
    outcome = logic.harden([(ct_node, labels)], model="unet-btcv-3mm", mode="vaft", attack="vafa-3d", params=QUICK,
                           iterations=2, validationData=[(ct_node, labels)], output=tmp_path / "hardened",
                           device="cpu", precision="fp32", seed=1, onProgress=reports.append, auditPreset=GRID)
    np.testing.assert_array_equal(ijk_array(ct_node), voxels)  # the inputs are never modified
    assert Path(outcome.modelPath) == tmp_path / "hardened" and _leftovers(tmp_path) == []
    assert all("SpectrumAttack-harden-" not in name for name in _temp_folders() - before_temp)
    hardened = load_model(outcome.modelPath, "cpu")  # by its path alone
    original = load_model("unet-btcv-3mm", "cpu")
    assert any(not torch.equal(v, original.model.state_dict()[k]) for k, v in hardened.model.state_dict().items())
    assert [row["iteration"] for row in outcome.history] == [1, 2]
    assert any("loss" in r.message for r in reports) and reports[-1].total > 0

    # in every model list at once, and usable by its name
    assert outcome.modelName == "unet-btcv-3mm hardened (vaft)" and outcome.modelName in logic.modelChoices()
    assert "Hardened (vaft) from unet-btcv-3mm" in logic.modelDescription(outcome.modelName)
    result = logic.run(ct_node, model=outcome.modelName, attack="fgsm", params={"eps": 4}, showResult=False)
    assert result.adversarialVolume.GetImageData().GetDimensions() == ct_node.GetImageData().GetDimensions()

    # the before/after table and chart
    rows = outcome.comparison["rows"]
    assert [r["model"] for r in rows] == ["original", "hardened"]
    table = outcome.table
    assert table.GetNumberOfRows() == 2 and table.GetCellText(1, 0) == "hardened"
    assert table.GetTable().GetColumnByName("Clean Dice").GetValue(0) == pytest.approx(rows[0]["clean_dice"])
    assert outcome.chart.IsA("vtkMRMLPlotChartNode") and outcome.chart.GetNumberOfPlotSeriesNodes() == 2

    # the audit compares catalogue and hardened models side by side
    summary = logic.audit(ct_node, model=["unet-btcv-3mm", outcome.modelName], preset=GRID,
                          referenceSegmentation=labels, device="cpu", precision="fp32")
    assert sorted(summary["per_model"]) == sorted(["unet-btcv-3mm", outcome.modelName])


@pytest.mark.slow  # loads the model and the cases before the first iteration
def test_cancelled_harden_leaves_nothing(module: Any, scene: Any, ct_node: Any, sample_ct: dict,
                                         tiny_catalogue: Path, tmp_path: Path) -> None:
    from SpectrumAttackLib.inference.tiles import Cancelled

    labels = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    logic = module.SpectrumAttackLogic()
    work = tmp_path / "work"  # tmp_path holds the tiny catalogue
    work.mkdir()
    before_ids, before_temp, choices = _ids(scene), _temp_folders(), logic.modelChoices()

    def cancel_at_first_iteration(report: Any) -> None:
        if report.stage == "train":
            logic.cancel()

    with pytest.raises(Cancelled):
        logic.harden([(ct_node, labels)], model="unet-btcv-3mm", params=QUICK, iterations=50,
                     output=work / "hardened", device="cpu", precision="fp32",
                     onProgress=cancel_at_first_iteration, auditPreset=GRID)
    assert list(work.iterdir()) == []  # no model, no staging folder
    assert _ids(scene) == before_ids and logic.modelChoices() == choices
    assert _temp_folders() <= before_temp  # the exported pairs are gone too


def _labelmap(scene: Any, volume: Any, array: np.ndarray, spacing: float | None = None) -> Any:
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    node.SetIJKToRASMatrix(matrix)
    if spacing is not None:
        node.SetSpacing(spacing, spacing, spacing)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array.transpose(2, 1, 0)))
    return node


@pytest.mark.parametrize(("case", "message"), [
    ("no pairs", "trainingData must hold at least one (volume, segmentation) pair, got none."),
    ("not a pair", "trainingData[0] must be a (volume node, segmentation or labelmap node) pair"),
    ("classes the model lacks", "trainingData[0] segmentation must"),
    ("other geometry", "trainingData[0] segmentation must have the geometry of its volume"),
    ("zero iterations", "iterations must be"),
    ("unknown mode", "mode must be one of"),
    ("server compute", "compute must be 'local' (this computer) to harden a model"),
])
def test_bad_harden_inputs_give_one_message_and_change_nothing(module: Any, scene: Any, ct_node: Any,
                                                              tiny_catalogue: Path, tmp_path: Path, case: str,
                                                              message: str) -> None:
    shape = ijk_array(ct_node).shape
    good = np.zeros(shape, np.int16)
    good[10:20, 10:20, 5:10] = 1
    arguments: dict[str, Any] = {"iterations": 2, "mode": "vaft"}
    if case == "no pairs":
        pairs: Any = []
    elif case == "not a pair":
        pairs = [ct_node]
    elif case == "classes the model lacks":
        lacking = good.copy()
        lacking[0, 0, 0] = 20  # the model has 14 classes
        pairs = [(ct_node, _labelmap(scene, ct_node, lacking))]
    elif case == "other geometry":
        pairs = [(ct_node, _labelmap(scene, ct_node, good, spacing=1.0))]
    else:
        pairs = [(ct_node, _labelmap(scene, ct_node, good))]
        arguments = {"iterations": 0} if case == "zero iterations" else {"iterations": 2, "mode": "robust"}
        if case == "server compute":
            import slicer
            from SpectrumAttackAdapter import compute

            node = slicer.vtkMRMLScriptedModuleNode()
            node.SetSingletonTag("SpectrumAttack")
            node.SetModuleName("SpectrumAttack")
            compute.set_backend(scene.AddNode(node), "server", "http://127.0.0.1:9")  # never contacted
            arguments = {"iterations": 2}
    logic = module.SpectrumAttackLogic()
    work = tmp_path / "work"  # tmp_path holds the tiny catalogue
    work.mkdir()
    before_ids, before_temp = _ids(scene), _temp_folders()
    with pytest.raises(ValueError) as raised:
        logic.harden(pairs, model="unet-btcv-3mm", output=work / "out", device="cpu", auditPreset=GRID,
                     **arguments)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert _ids(scene) == before_ids and list(work.iterdir()) == [] and _temp_folders() <= before_temp
    assert logic.modelChoices()[-1] == "my model (file)" and len(logic.modelChoices()) == 2


def test_background_harden_and_audit_need_the_application(module: Any, scene: Any, ct_node: Any,
                                                          tiny_catalogue: Path) -> None:
    labels = _labelmap(scene, ct_node, np.zeros(ijk_array(ct_node).shape, np.int16))
    logic = module.SpectrumAttackLogic()
    for call in (lambda: logic.harden([(ct_node, labels)], iterations=1, wait=False),
                 lambda: logic.audit(ct_node, model="unet-btcv-3mm", wait=False),
                 lambda: logic.run(ct_node, model="unet-btcv-3mm", attack="fgsm", wait=False)):
        with pytest.raises(ValueError, match="needs the Slicer application"):
            call()
