"""Volume nodes ↔ engine volumes: the one place where Slicer's KJI arrays become IJK arrays and back.

``slicer.util.arrayFromVolume`` returns voxel ``(i, j, k)`` at ``array[k, j, i]``; the engine works on
``array[i, j, k]`` plus the node's 4×4 IJK→RAS matrix (see ``docs/architecture.md``). Nothing else on the Slicer
side transposes.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk

__all__ = [
    "array_ijk",
    "check_input_volume",
    "ijk_to_ras_matrix",
    "new_volume_like",
    "same_geometry",
    "volume_to_ijk",
]


def check_input_volume(node: object, name: str = "inputVolume") -> None:
    """Raise ``ValueError`` unless ``node`` is a 3-D, single-component, grey-level volume node.

    Raises:
        ValueError: no node, a labelmap or non-volume node, no image data, several components (RGB or vector
            volume), or fewer than 2 voxels along an axis (a 2-D image or a single slice).
    """
    if node is None:
        raise ValueError(f"{name} must be a scalar volume node, got None.")
    if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise ValueError(f"{name} must be a scalar (grey-level) volume node, "
                         f"got {node.GetClassName()} {node.GetName()!r}.")
    image = node.GetImageData()
    if image is None:
        raise ValueError(f"{name} must hold image data, got the empty node {node.GetName()!r}.")
    components = image.GetNumberOfScalarComponents()
    if components != 1:
        raise ValueError(f"{name} must be a 3-D scalar volume (1 component per voxel), got {components} "
                         f"components (an RGB or vector volume) in {node.GetName()!r}.")
    dims = tuple(image.GetDimensions())
    if min(dims) < 2:
        raise ValueError(f"{name} must be a 3-D volume with at least 2 voxels along each axis, "
                         f"got dimensions {dims} in {node.GetName()!r}.")


def ijk_to_ras_matrix(node: object) -> np.ndarray:
    """The node's IJK→RAS matrix as a ``[4, 4]`` float64 array (mm)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix).astype(np.float64)


def array_ijk(node: object) -> np.ndarray:
    """A volume node's voxels as ``array[i, j, k]``: a **view** of ``arrayFromVolume``'s ``[k, j, i]`` array."""
    return slicer.util.arrayFromVolume(node).transpose(2, 1, 0)


def volume_to_ijk(node: object, name: str = "inputVolume") -> tuple[np.ndarray, np.ndarray]:
    """The voxels of a grey-level volume node in IJK order and its IJK→RAS matrix.

    Returns:
        ``(array, ijk_to_ras)``: ``array[i, j, k]`` is a read-only **view** of the node's voxels (no copy; the
        node's scalar type), ``ijk_to_ras`` is ``[4, 4]`` float64.

    Raises:
        ValueError: see :func:`check_input_volume`.
    """
    check_input_volume(node, name)
    view = array_ijk(node)
    view.flags.writeable = False  # the engine must never write into the input node
    return view, ijk_to_ras_matrix(node)


def same_geometry(a: object, b: object) -> bool:
    """Whether two volume nodes share dimensions and IJK→RAS matrix (to 1e-4 mm)."""
    dims_a = a.GetImageData().GetDimensions() if a.GetImageData() else None
    dims_b = b.GetImageData().GetDimensions() if b.GetImageData() else None
    return dims_a == dims_b and np.allclose(ijk_to_ras_matrix(a), ijk_to_ras_matrix(b), atol=1e-4)


def new_volume_like(
    scene: object,
    reference: object,
    voxels: np.ndarray,
    name: str,
    class_name: str = "vtkMRMLScalarVolumeNode",
) -> object:
    """A new volume node in ``scene`` with ``reference``'s geometry and the voxels ``array_ijk``.

    Args:
        scene: the ``vtkMRMLScene``.
        reference: volume node whose origin, spacing and directions are copied.
        voxels: ``[I, J, K]`` voxels with the reference's dimensions; int64 is stored as int32 (VTK volumes do
            not take int64).
        name: node name (made unique in the scene).
        class_name: ``vtkMRMLScalarVolumeNode`` or ``vtkMRMLLabelMapVolumeNode``.

    Raises:
        ValueError: the array's shape is not the reference's dimensions.
    """
    dims = tuple(reference.GetImageData().GetDimensions())
    if tuple(voxels.shape) != dims:
        raise ValueError(f"voxels must have the reference volume's dimensions {dims}, got {voxels.shape}.")
    if voxels.dtype == np.int64:
        voxels = voxels.astype(np.int32)
    node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    node.CopyOrientation(reference)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(voxels.transpose(2, 1, 0)))
    return node
