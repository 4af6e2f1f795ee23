"""A background run of the SpectrumAttackCLI module, for the application (Slicer's GUI never waits on torch).

``slicer.cli.run`` writes the input (and reference labels) to temporary files, starts the CLI process in a worker
thread and returns at once; the CLI node then reports progress (``<filter-progress>``, 0–100 on the node) and its
status. When the process completes, Slicer has read the output images back into the output nodes, and
:meth:`CLIJob._finish` turns them into the result nodes on the main thread. Cancel kills the process; every node
the job created is removed again.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qt
import slicer

from SpectrumAttackAdapter.results import SpectrumAttackResult, import_cli_outputs, output_names
from SpectrumAttackAdapter.segmentations import remove_nodes
from SpectrumAttackAdapter.volumes import new_volume_like

__all__ = ["CLIJob", "JobProgress"]

_STEP = re.compile(r"SpectrumAttack step (\d+)/(\d+) (\S+)")


@dataclass(frozen=True)
class JobProgress:
    """One progress report of a background run.

    Attributes:
        fraction: completed fraction in [0, 1].
        done, total: engine work units (attack steps plus the stages around them); 0 when not known yet.
        stage: ``"preprocess"``, ``"inference"``, ``"attack"`` or ``"metrics"`` ("" when not known yet).
        seconds: time since the job started.
    """

    fraction: float
    done: int
    total: int
    stage: str
    seconds: float

    @property
    def eta_seconds(self) -> float | None:
        """Estimated seconds left, from the time so far (None before any progress)."""
        if self.fraction <= 0.0:
            return None
        return self.seconds * (1.0 - self.fraction) / self.fraction


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
        self.on_progress, self.on_finished = on_progress, on_finished
        self.cli_node: Any = None
        self.started = time.monotonic()
        self._folder = Path(tempfile.mkdtemp(prefix="SpectrumAttack-"))
        self._observer: int | None = None
        self._done = False
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
        self.parameters = {
            **cli_parameters,
            "inputVolume": input_volume,
            "outputVolume": self.outputs["adversarial"],
            "perturbation": self.outputs["perturbation"],
            "cleanLabel": self.outputs["cleanLabel"],
            "adversarialLabel": self.outputs["adversarialLabel"],
            "metricsFile": str(self._folder / "metrics.json"),
        }
        if self._reference is not None:
            self.parameters["referenceLabel"] = self._reference
        for node in (self.outputs["cleanLabel"], self.outputs["adversarialLabel"], self._reference):
            if node is not None:
                node.HideFromEditorsOn()  # intermediate files of the run, replaced by segmentations

    @property
    def running(self) -> bool:
        """Whether the CLI process has not finished yet."""
        return not self._done

    def start(self) -> CLIJob:
        """Start the CLI process; returns at once. If it cannot start, the job's nodes are removed."""
        try:
            module = slicer.modules.spectrumattackcli
            self.cli_node = slicer.cli.createNode(module, self.parameters)
            # Without this Slicer fills GetOutputText() only at the end, and the step counter would stay empty.
            self.cli_node.StartContinuousOutputUpdate()
            slicer.cli.run(module, self.cli_node, self.parameters, wait_for_completion=False, update_display=False)
        except BaseException:
            self._done = True
            remove_nodes(self.scene, [*self.outputs.values(), self._reference])
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._observer = self.cli_node.AddObserver("ModifiedEvent", self._on_modified)
        return self

    def cancel(self) -> None:
        """Stop the CLI process (killed by Slicer); the created nodes are removed when it has stopped, and
        nothing is imported even if the process completed meanwhile (scene close, module cleanup)."""
        self._cancelled = True
        if self.cli_node is not None and not self._done:
            self.cli_node.Cancel()

    def _progress(self) -> JobProgress:
        done = total = 0
        stage = ""
        matches = _STEP.findall(self.cli_node.GetOutputText() or "")
        if matches:
            done, total, stage = int(matches[-1][0]), int(matches[-1][1]), matches[-1][2]
        return JobProgress(self.cli_node.GetProgress() / 100.0, done, total, stage, time.monotonic() - self.started)

    def _on_modified(self, caller: Any, event: Any) -> None:
        if self._done:
            return
        status = caller.GetStatus()
        if status & caller.BusyMask:
            if self.on_progress is not None:
                self.on_progress(self._progress())
            return
        if status in (caller.Completed, caller.Cancelled) or status & caller.ErrorsMask:
            self._done = True
            # Finish after this event: the CLI node is removed from the scene there.
            qt.QTimer.singleShot(0, lambda: self._finish(status))

    def _finish(self, status: int) -> None:
        node = self.cli_node
        node.RemoveObserver(self._observer)
        result: SpectrumAttackResult | None = None
        error: str | None = None
        try:
            if self._cancelled or status == node.Cancelled:
                error = "cancelled"
            elif status == node.Completed:
                result = import_cli_outputs(self.scene, self.input_volume, self.outputs,
                                            self._folder / "metrics.json", self.attack)
            else:
                error = (node.GetErrorText() or "the SpectrumAttack CLI failed").strip()
        except Exception as exc:  # turned into the job's error message; the nodes are removed below
            logging.exception("SpectrumAttack: importing the CLI outputs failed")
            error = str(exc)
        if result is None:
            remove_nodes(self.scene, list(self.outputs.values()))
        remove_nodes(self.scene, [self._reference, node])
        shutil.rmtree(self._folder, ignore_errors=True)
        if self.on_finished is not None:
            self.on_finished(result, error)
