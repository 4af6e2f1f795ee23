"""Label arrays ↔ segmentation nodes, with the model's class names and colours.

Predictions become segmentation nodes through a labelmap node and ``ImportLabelmapToSegmentationNode`` (the
labelmap recipe of ``slicer-extension.md`` §8.2): every class of the model gets a segment, in class order, even
when the prediction does not contain it, so that the clean and the adversarial segmentation list the same organs.
Reference segmentations (ground truth for Dice) come back as class-id arrays on the input volume's grid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import slicer
import vtk

from SpectrumAttackAdapter.volumes import array_ijk, new_volume_like, same_geometry

__all__ = [
    "class_color",
    "labelmap_to_segmentation",
    "labels_to_segmentation",
    "reference_labels",
    "remove_nodes",
    "segmentations_logic",
]


@functools.cache
def _standalone_logic() -> object:
    return slicer.vtkSlicerSegmentationsModuleLogic()


def segmentations_logic(scene: object) -> object:
    """The Segmentations module logic: the application's, or (slicer-core) one made here and given ``scene``.

    Creating the logic registers the segmentation converter rules; without them ``AddEmptySegment`` fails with
    "Unable to construct empty representation type 'Binary labelmap'".
    """
    modules = getattr(slicer, "modules", None)
    if modules is not None and hasattr(modules, "segmentations"):
        return modules.segmentations.logic()
    logic = _standalone_logic()
    if logic.GetMRMLScene() is not scene:
        logic.SetMRMLScene(scene)
    return logic


def class_color(entry: dict[str, Any]) -> tuple[float, float, float]:
    """A class's ``rgb`` as three floats in [0, 1] (the catalogue stores 0–255 integers)."""
    rgb = [float(c) for c in entry.get("rgb", (128, 128, 128))]
    return tuple(c / 255.0 for c in rgb) if max(rgb) > 1.0 else tuple(rgb)


def remove_nodes(scene: object, nodes: Sequence[object | None]) -> None:
    """Remove nodes and their display and storage nodes from ``scene`` (None entries are skipped)."""
    for node in nodes:
        if node is None or node.GetScene() is None:
            continue
        helpers = []
        if node.IsA("vtkMRMLDisplayableNode"):
            helpers += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
        if node.IsA("vtkMRMLStorableNode") and node.GetStorageNode() is not None:
            helpers.append(node.GetStorageNode())
        scene.RemoveNode(node)
        for helper in helpers:
            if helper is not None and helper.GetScene() is not None:
                scene.RemoveNode(helper)


def labelmap_to_segmentation(
    scene: object,
    labelmap: object,
    reference_volume: object,
    classes: Sequence[dict[str, Any]],
    name: str,
) -> object:
    """A new segmentation node with one segment per non-background class, filled from ``labelmap``.

    Label value ``v`` goes to the segment of the class with id ``v``; segment IDs and names are the class names,
    colours the class colours. The segmentation's reference geometry is ``reference_volume``.

    Args:
        scene: the ``vtkMRMLScene``.
        labelmap: ``vtkMRMLLabelMapVolumeNode`` holding class ids ``0..K-1`` (0 = background); left in the scene.
        reference_volume: the volume the segmentation belongs to.
        classes: the model's classes, ``[{"id", "name", "rgb"}]`` with ids ``0..K-1``.
        name: node name (made unique).

    Raises:
        ValueError: class ids are not ``0..K-1``.
        RuntimeError: Slicer could not import the labelmap.
    """
    segmentations_logic(scene)
    ordered = sorted(classes, key=lambda c: int(c["id"]))
    if [int(c["id"]) for c in ordered] != list(range(len(ordered))):
        raise ValueError(f"classes must have ids 0..K-1, got {[c['id'] for c in classes]!r}.")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), reference_volume.GetID())
    segmentation = node.GetSegmentation()
    segment_ids = vtk.vtkStringArray()
    for entry in ordered[1:]:
        segment_id = segmentation.AddEmptySegment(str(entry["name"]), str(entry["name"]), class_color(entry))
        segment_ids.InsertNextValue(segment_id)
    if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, node, segment_ids):
        remove_nodes(scene, [node])
        raise RuntimeError(f"Slicer could not import the labelmap {labelmap.GetName()!r} into a segmentation.")
    return node


def labels_to_segmentation(
    scene: object,
    labels_ijk: np.ndarray,
    reference_volume: object,
    classes: Sequence[dict[str, Any]],
    name: str,
) -> object:
    """A new segmentation node from class ids ``[I, J, K]`` on ``reference_volume``'s grid.

    The temporary labelmap node used for the import is removed again.
    """
    dtype = np.uint8 if len(classes) <= 256 else np.int16
    labelmap = new_volume_like(scene, reference_volume, labels_ijk.astype(dtype), f"{name} labels",
                               "vtkMRMLLabelMapVolumeNode")
    try:
        return labelmap_to_segmentation(scene, labelmap, reference_volume, classes, name)
    finally:
        remove_nodes(scene, [labelmap])


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def _segment_class_ids(segmentation_node: object, classes: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Class id of every segment: by name (case, spaces and underscores ignored), else by the segment's label
    value (set when Slicer imported it from a labelmap)."""
    by_name = {_normalise(str(c["name"])): int(c["id"]) for c in classes}
    segmentation = segmentation_node.GetSegmentation()
    out: dict[str, int] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        class_id = by_name.get(_normalise(segment.GetName()))
        if class_id is None and 0 < segment.GetLabelValue() < len(classes):
            class_id = segment.GetLabelValue()
        if class_id is None:
            names = ", ".join(repr(str(c["name"])) for c in classes[1:])
            raise ValueError(f"referenceSegmentation segments must be named after the model's classes ({names}), "
                             f"got {segment.GetName()!r}.")
        if class_id > 0:
            out[segment_id] = class_id
    return out


def _segmentation_to_labels(scene: object, segmentation_node: object, input_volume: object,
                            classes: Sequence[dict[str, Any]]) -> np.ndarray:
    mapping = _segment_class_ids(segmentation_node, classes)
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", scene.GenerateUniqueName("reference labels"))
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, list(mapping), labelmap, input_volume, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
        if not ok:
            raise RuntimeError(f"Slicer could not export {segmentation_node.GetName()!r} onto the input volume.")
        exported = np.array(array_ijk(labelmap))
    finally:  # the labelmap and what the export added for it (its "<name>_ColorTable" node, display nodes)
        added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
        remove_nodes(scene, [labelmap, *(n for n in added if n.GetID() not in before)])
    # The export numbers the listed segments 1..N in order; map those numbers to class ids.
    lookup = np.zeros(len(mapping) + 1, dtype=np.int16)
    lookup[1:] = list(mapping.values())
    return lookup[exported]


def reference_labels(scene: object, node: object, input_volume: object,
                     classes: Sequence[dict[str, Any]]) -> np.ndarray:
    """Ground-truth class ids ``[I, J, K]`` on the input volume's grid from a segmentation or labelmap node.

    A segmentation node is exported onto the input grid (Slicer resamples); its segments are matched to the
    classes by name, else by label value. A labelmap node holds class ids; on another grid it is imported and
    exported the same way.

    Raises:
        ValueError: a node of another type, a segment that matches no class, or (labelmap) values that are not
            integer class ids of the model (``0..K-1``; the engine's check and wording).
    """
    if node.IsA("vtkMRMLSegmentationNode"):
        return _segmentation_to_labels(scene, node, input_volume, classes)
    if not node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise ValueError(f"referenceSegmentation must be a segmentation or labelmap volume node, "
                         f"got {node.GetClassName()} {node.GetName()!r}.")
    if not same_geometry(node, input_volume):
        temporary = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName("reference"))
        try:
            if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(node, temporary):
                raise RuntimeError(f"Slicer could not import the labelmap {node.GetName()!r}.")
            return _segmentation_to_labels(scene, temporary, input_volume, classes)
        finally:
            remove_nodes(scene, [temporary])
    from SpectrumAttackLib.pipeline.validate import check_labels  # torch-heavy: imported on use

    labels = check_labels("referenceSegmentation", array_ijk(node), array_ijk(input_volume).shape, len(classes))
    return labels.astype(np.int16)

