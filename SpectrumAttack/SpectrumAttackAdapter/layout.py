"""Side-by-side views of a run: clean input with its segmentation left, adversarial volume with its segmentation
right, axial, linked. Needs the application's layout manager; without one (slicer-core) nothing happens."""

from __future__ import annotations

from typing import Any

import slicer

__all__ = ["show_side_by_side"]


def show_side_by_side(input_volume: Any, result: Any) -> bool:
    """Switch to the side-by-side layout: Red = input + clean segmentation, Yellow = adversarial + its segmentation.

    Args:
        input_volume: the attacked volume node.
        result: a ``SpectrumAttackResult``.

    Returns:
        Whether a layout was set (False outside the application).
    """
    app = getattr(slicer, "app", None)
    manager = app.layoutManager() if app is not None else None
    if manager is None:
        return False
    manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    views = {"Red": (input_volume, result.cleanSegmentation),
             "Yellow": (result.adversarialVolume, result.adversarialSegmentation)}
    for view, (volume, segmentation) in views.items():
        widget = manager.sliceWidget(view)
        composite = widget.mrmlSliceCompositeNode()
        composite.SetBackgroundVolumeID(volume.GetID())
        composite.SetForegroundVolumeID(None)
        composite.SetLabelVolumeID(None)
        composite.SetLinkedControl(True)
        widget.mrmlSliceNode().SetOrientationToAxial()
        segmentation.GetDisplayNode().SetDisplayableOnlyInView(widget.mrmlSliceNode().GetID())
        widget.sliceLogic().FitSliceToAll()
    return True
