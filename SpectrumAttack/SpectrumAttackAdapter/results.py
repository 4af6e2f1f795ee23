"""One run's outputs as scene nodes: written from an engine result (in-process runs) or from the CLI's outputs.

Either way a run creates five nodes next to the untouched input volume: the adversarial volume and the perturbation
(the input's geometry and intensity units), clean and adversarial segmentations (the model's classes, names and
colours) and a metrics table. If anything fails half-way, the nodes created so far are removed again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackAdapter.segmentations import labelmap_to_segmentation, labels_to_segmentation, remove_nodes
from SpectrumAttackAdapter.tables import metrics_table
from SpectrumAttackAdapter.volumes import new_volume_like

__all__ = ["SpectrumAttackResult", "import_cli_outputs", "output_names", "style_volumes", "write_result"]


@dataclass
class SpectrumAttackResult:
    """What ``SpectrumAttackLogic.run`` returns.

    Attributes:
        adversarialVolume: ``vtkMRMLScalarVolumeNode``, input + perturbation, the input's geometry.
        perturbationVolume: ``vtkMRMLScalarVolumeNode``, adversarial − input (input units, e.g. HU).
        cleanSegmentation, adversarialSegmentation: ``vtkMRMLSegmentationNode`` with one segment per organ.
        metricsTable: ``vtkMRMLTableNode`` (see ``SpectrumAttackAdapter.tables.COLUMNS``).
        metrics: the engine's metrics dictionary (``clean`` / ``adversarial`` sections, per-organ values).
        classes: the model's classes ``[{"id", "name", "rgb"}]``.
        seconds: wall-clock time of the engine run.
        attackConfig: every attack and model setting of the run.
    """

    adversarialVolume: Any
    perturbationVolume: Any
    cleanSegmentation: Any
    adversarialSegmentation: Any
    metricsTable: Any
    metrics: dict[str, Any]
    classes: list[dict[str, Any]]
    seconds: float
    attackConfig: dict[str, Any] = field(default_factory=dict)

    def nodes(self) -> list[Any]:
        """The five created nodes."""
        return [self.adversarialVolume, self.perturbationVolume, self.cleanSegmentation,
                self.adversarialSegmentation, self.metricsTable]


def output_names(input_volume: Any, attack: str) -> dict[str, str]:
    """Node names of a run's outputs (made unique in the scene when created)."""
    base = input_volume.GetName()
    return {
        "adversarial": f"{base} adversarial ({attack})",
        "perturbation": f"{base} perturbation ({attack})",
        "clean": f"{base} segmentation clean",
        "adversarialSegmentation": f"{base} segmentation adversarial ({attack})",
        "metrics": f"{base} attack metrics ({attack})",
    }


def style_volumes(input_volume: Any, adversarial: Any, perturbation: Any) -> None:
    """Show the adversarial volume like the input (colour map, window/level) and the perturbation around 0."""
    source = input_volume.GetDisplayNode()
    for node in (adversarial, perturbation):
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
    target = adversarial.GetDisplayNode()
    if source is not None and target is not None:
        if source.GetColorNodeID():
            target.SetAndObserveColorNodeID(source.GetColorNodeID())
        target.SetAutoWindowLevel(source.GetAutoWindowLevel())
        target.SetWindowLevel(source.GetWindow(), source.GetLevel())
    display = perturbation.GetDisplayNode()
    image = perturbation.GetImageData()
    if display is not None and image is not None:
        low, high = image.GetScalarRange()
        half = max(abs(low), abs(high), 1e-6)
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(2 * half, 0.0)


def write_result(scene: Any, input_volume: Any, result: Any, attack: str) -> SpectrumAttackResult:
    """Create the output nodes of an in-process run from the engine's ``SingleVolumeResult``.

    Args:
        scene: the ``vtkMRMLScene``.
        input_volume: the attacked volume node (left untouched; its geometry is copied).
        result: ``SpectrumAttackLib.workflows.single.SingleVolumeResult`` on the input's IJK grid.
        attack: attack name, used in node names.
    """
    names = output_names(input_volume, attack)
    created: list[Any] = []
    try:
        adversarial = new_volume_like(scene, input_volume, result.adversarial.astype(np.float32),
                                      names["adversarial"])
        created.append(adversarial)
        perturbation = new_volume_like(scene, input_volume, result.perturbation.astype(np.float32),
                                       names["perturbation"])
        created.append(perturbation)
        clean = labels_to_segmentation(scene, result.seg_clean, input_volume, result.classes, names["clean"])
        created.append(clean)
        adversarial_seg = labels_to_segmentation(scene, result.seg_adv, input_volume, result.classes,
                                                 names["adversarialSegmentation"])
        created.append(adversarial_seg)
        table = metrics_table(scene, result.metrics, result.seconds, names["metrics"])
        created.append(table)
        style_volumes(input_volume, adversarial, perturbation)
    except BaseException:
        remove_nodes(scene, created)
        raise
    return SpectrumAttackResult(adversarial, perturbation, clean, adversarial_seg, table, result.metrics,
                                result.classes, result.seconds, result.attack_config)


def import_cli_outputs(
    scene: Any,
    input_volume: Any,
    outputs: dict[str, Any],
    metrics_file: str | Path,
    attack: str,
) -> SpectrumAttackResult:
    """Turn the outputs of a finished CLI run into the result nodes.

    Args:
        scene: the ``vtkMRMLScene``.
        input_volume: the attacked volume node.
        outputs: the CLI's output nodes, filled by Slicer: ``adversarial`` and ``perturbation`` (kept) and
            ``cleanLabel`` / ``adversarialLabel`` (labelmaps; converted to segmentations, then removed).
        metrics_file: the JSON written by the CLI's ``--metricsFile`` (metrics, classes, attack configuration).
        attack: attack name, used in node names.
    """
    document = json.loads(Path(metrics_file).read_text(encoding="utf-8"))
    names = output_names(input_volume, attack)
    created: list[Any] = []
    try:
        clean = labelmap_to_segmentation(scene, outputs["cleanLabel"], input_volume, document["classes"],
                                         names["clean"])
        created.append(clean)
        adversarial_seg = labelmap_to_segmentation(scene, outputs["adversarialLabel"], input_volume,
                                                   document["classes"], names["adversarialSegmentation"])
        created.append(adversarial_seg)
        table = metrics_table(scene, document["metrics"], document["seconds"], names["metrics"])
        created.append(table)
        style_volumes(input_volume, outputs["adversarial"], outputs["perturbation"])
    except BaseException:
        remove_nodes(scene, created)
        raise
    finally:
        remove_nodes(scene, [outputs["cleanLabel"], outputs["adversarialLabel"]])
    return SpectrumAttackResult(outputs["adversarial"], outputs["perturbation"], clean, adversarial_seg, table,
                                document["metrics"], document["classes"], document["seconds"],
                                document.get("attack_config", {}))
