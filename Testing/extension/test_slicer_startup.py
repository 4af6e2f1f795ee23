"""What a fresh Slicer meets first: the Python-version message, the dependency step before any torch/MONAI
import, and reference exports that leave no stray nodes. Each runs in a subprocess or restores what it changed."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
from slicer_helpers import DEPENDENCY_STEP_PROBE, MODULE_DIR, ROOT

MODULE_FILE = MODULE_DIR / "SpectrumAttack.py"

#: An import hook that makes torch and MONAI unimportable, then the two paths of a first Apply.
_BLOCKED_RUN = DEPENDENCY_STEP_PROBE + """
class Node:  # the parameter node's fields the Apply path reads
    inputVolume, referenceSegmentation, model, attack = volume, None, "unet-btcv-3mm", "saa"
for name, call in (("run", lambda: m.SpectrumAttackLogic().run(volume, model="unet-btcv-3mm", attack="saa",
                                                                params={"steps": 2})),
                   ("apply", lambda: m.SpectrumAttackLogic().runFromParameterNode(Node()))):
    try:
        call()
    except Reached as reached:
        print(name, "reached the dependency step; torch/monai imported before:", reached.args[0])
"""


def test_first_apply_reaches_the_dependency_step_before_torch_or_monai_is_imported() -> None:
    code = _BLOCKED_RUN
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "run reached the dependency step; torch/monai imported before: []",
        "apply reached the dependency step; torch/monai imported before: []",
    ]


def test_module_file_is_python_3_9_syntax_with_annotations_kept_as_text() -> None:
    source = MODULE_FILE.read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))  # Slicer 5.8's Python compiles the whole file before running it
    tree = ast.parse(source)
    future = tree.body[1]
    assert isinstance(future, ast.ImportFrom) and future.module == "__future__"
    assert [a.name for a in future.names] == ["annotations"]


def test_old_python_gets_one_readable_message_before_anything_else_is_imported() -> None:
    code = textwrap.dedent(f"""
        import sys
        sys.version_info = (3, 9, 10, "final", 0)  # what Slicer 5.8 reports
        sys.version = "3.9.10 (main)"
        sys.path[:0] = [{str(MODULE_DIR)!r}, {str(ROOT)!r}]
        try:
            import SpectrumAttack
        except ImportError as error:
            print(error)
        print(sorted(n for n in sys.modules if n.split(".")[0] in ("slicer", "numpy", "SpectrumAttackLib",
                                                                     "SpectrumAttackAdapter", "vtk")))
        """)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    message, imported = completed.stdout.splitlines()
    assert message == ("SpectrumAttack needs 3D Slicer 5.10 or later (Python 3.12); this Slicer runs Python 3.9.10. "
                       "Install the current Slicer from https://download.slicer.org.")
    assert imported == "[]"


def test_reference_export_leaves_no_node_behind(scene: Any) -> None:
    from SpectrumAttackAdapter.segmentations import reference_labels, segmentations_logic

    segmentations_logic(scene)
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    import slicer

    slicer.util.updateVolumeFromArray(volume, np.zeros((6, 8, 10), np.float32))
    labels = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "organs")
    array = np.zeros((6, 8, 10), np.int16)
    array[2:4, 2:5, 3:7] = 1
    slicer.util.updateVolumeFromArray(labels, array)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs seg")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labels, segmentation)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("liver")
    before = sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes()))
    classes = [{"id": 0, "name": "background", "rgb": [0, 0, 0]}, {"id": 1, "name": "liver", "rgb": [1, 0, 0]}]
    out = reference_labels(scene, segmentation, volume, classes)
    assert int(out.sum()) == int(array.sum())
    after = sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes()))
    assert after == before
    assert scene.GetFirstNodeByName("reference labels_ColorTable") is None
