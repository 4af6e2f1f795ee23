"""A background attack through the SpectrumAttackCLI module (the application's Apply; ``logic.run(wait=False)``).

Slicer writes the input (and the reference labels) to temporary files, runs the CLI process (:mod:`.clirun`) and,
when it completes, reads the output images back into the output nodes; :meth:`CLIJob._done` then turns them into
the result nodes. Until then the output nodes are hidden from the node selectors (an empty "adversarial" volume
must not be offered as an input during a run). Cancel kills the process; every node the job created is removed
and the process's staging folders too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from SpectrumAttackAdapter.clirun import CLIRun, JobProgress
from SpectrumAttackAdapter.results import SpectrumAttackResult, import_cli_outputs, output_names
from SpectrumAttackAdapter.segmentations import remove_nodes
from SpectrumAttackAdapter.volumes import new_volume_like

__all__ = ["CLIJob", "JobProgress"]


class CLIJob:
    """Run the CLI module on ``input_volume`` in the background.

    Args:
        scene: the application's scene.
        input_volume: volume node to attack.
        cli_parameters: from ``EngineArguments.cli_parameters()``.
        reference_labels: optional class ids ``[I, J, K]`` on the input grid (ground truth for the metrics).
        attack: attack name (node names).
        on_progress: called with a :class:`JobProgress` whenever the CLI reports.
        on_finished: called once with ``(result, error)``: the :class:`SpectrumAttackResult`, or None and a
            message ("cancelled" when cancelled).
    """

    def __init__(self, scene: Any, input_volume: Any, cli_parameters: dict[str, Any], reference_labels: Any,
                 attack: str, on_progress: Callable[[JobProgress], None] | None,
                 on_finished: Callable[[SpectrumAttackResult | None, str | None], None] | None) -> None:
        self.scene, self.input_volume, self.attack = scene, input_volume, attack
        self.on_finished = on_finished
        self._folder = Path(tempfile.mkdtemp(prefix="SpectrumAttack-"))
        self._cancelled = False
        names = output_names(input_volume, attack)
        self.outputs = {
            "adversarial": scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode",
                                                   scene.GenerateUniqueName(names["adversarial"])),
            "perturbation": scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode",
                                                    scene.GenerateUniqueName(names["perturbation"])),
            "cleanLabel": scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "SpectrumAttack clean labels"),
            "adversarialLabel": scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode",
                                                        "SpectrumAttack adversarial labels"),
        }
        self._reference = None
        if reference_labels is not None:
            self._reference = new_volume_like(scene, input_volume, reference_labels.astype("int16"),
                                              "SpectrumAttack reference labels", "vtkMRMLLabelMapVolumeNode")
        for node in (*self.outputs.values(), self._reference):
            if node is not None:
                node.HideFromEditorsOn()  # not offered by node selectors until the run has filled them
        parameters = {
            **cli_parameters,
            "inputVolume": input_volume,
            "outputVolume": self.outputs["adversarial"],
            "perturbation": self.outputs["perturbation"],
            "cleanLabel": self.outputs["cleanLabel"],
            "adversarialLabel": self.outputs["adversarialLabel"],
            "metricsFile": str(self._folder / "metrics.json"),
        }
        if self._reference is not None:
            parameters["referenceLabel"] = self._reference
        self.run = CLIRun("spectrumattackcli", "SpectrumAttackCLI", parameters, self._folder, on_progress,
                          self._done)

    @property
    def running(self) -> bool:
        """Whether the CLI process has not finished yet."""
        return self.run.running

    def start(self) -> CLIJob:
        """Start the CLI process; returns at once. If it cannot start, the job's nodes are removed."""
        try:
            self.run.start()
        except BaseException:
            self._remove([*self.outputs.values(), self._reference])
            raise
        return self

    def cancel(self) -> None:
        """Stop the CLI process; the created nodes are removed when it has stopped, and nothing is imported even
        if the process completed meanwhile (scene close, module cleanup)."""
        self._cancelled = True
        self.run.cancel()

    def _remove(self, nodes: list[Any]) -> None:
        remove_nodes(self.scene, nodes)

    def _done(self, status: str, error: str | None) -> None:
        result: SpectrumAttackResult | None = None
        try:
            if self._cancelled or status == "cancelled":
                error = "cancelled"
            elif status == "completed":
                result = import_cli_outputs(self.scene, self.input_volume, self.outputs,
                                            self._folder / "metrics.json", self.attack)
                for node in (result.adversarialVolume, result.perturbationVolume):
                    node.HideFromEditorsOff()
        except Exception as exc:  # turned into the job's error message; the nodes are removed below
            logging.exception("SpectrumAttack: importing the CLI outputs failed")
            error, result = str(exc), None
        if result is None:
            self._remove(list(self.outputs.values()))
        self._remove([self._reference])
        if self.on_finished is not None:
            self.on_finished(result, error)
