"""Helpers of the Slicer-side tests: paths, the sample-CT crop, the tiny UNet settings, volume I/O through Slicer's
storage node and label extraction from segmentation nodes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "SpectrumAttack"
CLI_DIR = ROOT / "SpectrumAttackCLI"
for folder in (ROOT, MODULE_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

#: Crop of sample case img0001 (122×101×112 at 3 mm, RAS): upper abdomen with liver, spleen, kidneys, stomach.
CROP = (slice(22, 86), slice(24, 72), slice(84, 108))
#: Tiny UNet settings (the catalogue's architecture, a fraction of its width).
TINY_UNET = {"channels": (4, 8, 16), "strides": (2, 2), "num_res_units": 1}
#: Python source that makes torch and MONAI unimportable (a Slicer without the PyTorch extension) and puts the
#: module and the repository on ``sys.path``: the first lines of a subprocess's ``-c`` program.
TORCH_BLOCKED_PRELUDE = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai"):
            raise ModuleNotFoundError("No module named " + name + " (blocked by the test)")
sys.meta_path.insert(0, Block())
sys.path[:0] = [{str(MODULE_DIR)!r}, {str(ROOT)!r}]
"""
#: After :data:`TORCH_BLOCKED_PRELUDE`: a real scene, the module imported (asserted torch- and MONAI-free), its
#: dependency step replaced by one that raises ``Reached(<torch/monai modules imported so far>)``, and an 8³ volume
#: node ``volume``: a logic call reaching the dependency step then shows what it imported before it.
DEPENDENCY_STEP_PROBE = TORCH_BLOCKED_PRELUDE + """
import numpy as np, slicer
slicer.mrmlScene = slicer.vtkMRMLScene()
import SpectrumAttack as m
assert not any(n.split(".")[0] in ("torch", "monai") for n in sys.modules)
class Reached(Exception):
    pass
def dependencies(self):
    raise Reached(sorted(n for n in sys.modules if n.split(".")[0] in ("torch", "monai")))
m.SpectrumAttackLogic.ensureDependencies = dependencies
volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
slicer.util.updateVolumeFromArray(volume, np.zeros((8, 8, 8), np.float32))
"""


def load_volume(scene: Any, path: Path, name: str, class_name: str = "vtkMRMLScalarVolumeNode") -> Any:
    """Read a volume file into a new node through ``vtkMRMLVolumeArchetypeStorageNode`` (Slicer's reader)."""
    node = scene.AddNewNodeByClass(class_name, name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"Slicer could not read {path}"
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def write_volume_node(scene: Any, node: Any, path: Path) -> None:
    """Write a volume node with Slicer's storage node (as Slicer does for a CLI's input images)."""
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    assert storage.WriteData(node), f"Slicer could not write {path}"
    scene.RemoveNode(storage)


def ijk_array(node: Any) -> np.ndarray:
    """A volume node's voxels in IJK order (a copy)."""
    return np.array(slicer.util.arrayFromVolume(node)).transpose(2, 1, 0)


def ijk_to_ras(node: Any) -> np.ndarray:
    """A volume node's IJK→RAS matrix as a 4×4 array."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def volume_from_ijk(scene: Any, array: np.ndarray, ijk_to_ras_matrix: np.ndarray, name: str) -> Any:
    """A new scalar volume node from IJK voxels and an IJK→RAS matrix."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras_matrix))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array.transpose(2, 1, 0)))
    return node


def segmentation_labels(scene: Any, segmentation: Any, reference: Any, class_names: list[str]) -> np.ndarray:
    """Class ids ``[I, J, K]`` on ``reference``'s grid from a segmentation whose segment IDs are class names."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    present = [n for n in class_names[1:] if segmentation.GetSegmentation().GetSegment(n) is not None]
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation, present, labelmap, reference, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
    exported = ijk_array(labelmap)
    scene.RemoveNode(labelmap)
    lookup = np.array([0] + [class_names.index(n) for n in present])
    return lookup[exported]
