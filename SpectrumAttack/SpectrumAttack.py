"""SpectrumAttack: measure and harden the adversarial robustness of volumetric segmentation models, in 3D Slicer.

The template's five parts: module, parameter node, Widget (builds the sections of ``SpectrumAttackSections/``, each
with its own ``.ui``), Logic (a facade over ``SpectrumAttackAdapter/``) and self-test. With ``slicer-core`` alone
this file imports and ``SpectrumAttackLogic`` runs on ``slicer.mrmlScene``; the GUI parts need the application.

Console use::

    logic = slicer.util.getModuleLogic("SpectrumAttack")
    result = logic.run(slicer.util.getNode("CTChest"), model="unet-btcv-3mm", attack="saa",
                       params={"steps": 10, "rho": 0.2, "block_size": 32, "lambda_dice": 0.01})
    summary = logic.audit(slicer.util.getNode("CTChest"), model="unet-btcv-3mm", preset="quick")
    hardened = logic.harden([(ct, labels)], model="unet-btcv-3mm", mode="vaft", attack="vafa-3d", iterations=200)
"""

from __future__ import annotations  # annotations stay text: nothing of 3.10+ is evaluated before the check below

import sys

#: The engine needs Python 3.11 (``typing.Self``): Slicer 5.10 and later ship 3.12; Slicer 5.8 ships 3.9.
MINIMUM_PYTHON = (3, 11)
if sys.version_info < MINIMUM_PYTHON:
    raise ImportError(
        "SpectrumAttack needs 3D Slicer 5.10 or later (Python 3.12); this Slicer runs Python "
        + sys.version.split()[0] + ". Install the current Slicer from https://download.slicer.org."
    )

import importlib.util  # noqa: E402 - after the version check, as every import below
import logging  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, Union  # noqa: E402

import slicer  # noqa: E402
import vtk  # noqa: E402


def _addSourcePaths() -> None:
    """Source-tree runs (``--additional-module-paths``): the engine sits in the repository root, the adapter and
    the sections next to this file. Installed extensions have them in ``qt-scripted-modules`` already."""
    here = Path(__file__).resolve().parent
    for name, folder in (("SpectrumAttackLib", here.parent), ("SpectrumAttackAdapter", here)):
        try:
            __import__(name)
        except ImportError:
            sys.path.insert(0, str(folder))


_addSourcePaths()

from SpectrumAttackAdapter import compute, model_list, selftest  # noqa: E402 - after the source paths
from SpectrumAttackAdapter.arguments import MODEL_SETTINGS, engine_arguments  # noqa: E402
from SpectrumAttackAdapter.jobs import SceneJobs  # noqa: E402
from SpectrumAttackAdapter.model_list import USER_MODEL  # noqa: E402
from SpectrumAttackAdapter.segmentations import segmentations_logic  # noqa: E402
from SpectrumAttackAdapter.volumes import check_input_volume  # noqa: E402

from SpectrumAttackLib import attacks  # noqa: E402 - torch-free registry
from SpectrumAttackLib.attacks.parameters import (  # noqa: E402 - the one table of attack parameters, torch-free
    GENERAL_SETTINGS,
    SLICER_PARAMETERS,
    Parameter,
    parameters_of,
)
from SpectrumAttackLib.models.catalogue import ARCHITECTURES  # noqa: E402

#: Whether this runs inside the Slicer application: only there is ``slicer.app`` set (Slicer's
#: ``Base/Python/slicer/__init__.py``). PythonSlicer (``python-real``) and slicer-core have no application, even
#: where ``qt`` can be imported; there the Logic and the self-test's checks are defined, nothing of the GUI.
APPLICATION = hasattr(slicer, "app") and importlib.util.find_spec("qt") is not None

if APPLICATION:
    import ctk  # noqa: F401 - loaded for the .ui files' ctk widgets
    from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
    from slicer.i18n import tr as _
    from slicer.i18n import translate
    from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )
    from slicer.util import VTKObservationMixin
else:  # slicer-core / PythonSlicer: the Logic and the self-test's checks only
    ScriptedLoadableModuleLogic = object

#: Non-torch Python packages of the engine, installed on first use in the application.
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "Resources" / "requirements.txt"
#: Audit grids by name (or a grid file, ``auditGridFile``).
AUDIT_PRESETS = ("quick", "standard", "paper", "grid file")

#
# Module
#

if APPLICATION:

    class SpectrumAttack(ScriptedLoadableModule):
        """Module description shown in Slicer's module panel."""

        def __init__(self, parent: Any) -> None:
            ScriptedLoadableModule.__init__(self, parent)
            self.parent.title = _("SpectrumAttack")
            self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
            self.parent.dependencies = []
            self.parent.contributors = ["SpectrumAttack developers"]
            self.parent.helpText = _(
                "Measure and harden how robust a volumetric segmentation model is against adversarial perturbations. "
                "<b>Attack</b>: SA² (Spectrum Adversarial Attack) scales the 3-D DCT coefficients of image blocks by "
                "learned factors in [1−ρ, 1+ρ]; VAFA learns a DCT quantisation table per block; PGD, FGSM, BIM, "
                "Gaussian noise, SegPGD and CosPGD perturb voxels. <b>Audit</b>: every attack family over a budget "
                "sweep, compared at equal 3-D SSIM, with a report. <b>Harden</b>: adversarial fine-tuning (VAFT) on "
                "labelled volumes of the scene, and the model before and after.<br><br>"
                "Papers: A. Hanif et al., <i>Spectrum Adversarial Attack (SA²) on volumetric medical segmentation</i>, "
                "ISBI 2025 (github.com/asif-hanif/saa); A. Hanif, M. Naseer, S. Khan, M. Shah, F. S. Khan, "
                "<i>Frequency Domain Adversarial Training for Robust Volumetric Medical Segmentation</i> (VAFA/VAFT), "
                "MICCAI 2023, arXiv:2307.07269.")
            self.parent.acknowledgementText = _(
                "Built on MONAI and PyTorch (through the PyTorch extension). Sample data: TotalSegmentator test "
                "fixtures (Apache-2.0).")

#
# Parameter node
#

if APPLICATION:

    def _fieldType(row: Parameter) -> Any:
        """The parameter-node type of a table row: its validator (range or choices) from the table. (Step and
        decimals are in the .ui file; Slicer's wrapper logs GUI-only annotations as unused.)"""
        if row.kind == "bool":
            return bool
        if row.kind == "choice":
            return Annotated[str, Choice(row.choices)]
        if row.kind == "float":
            return Annotated[float, WithinRange(row.minimum, row.maximum)]
        return Annotated[int, WithinRange(row.minimum, row.maximum)]  # int, and block: one edge (cubic blocks)

    class SpectrumAttackParameterNode:
        """Everything needed to repeat a run from a saved scene; attack names as in ``SpectrumAttackCLI.xml``.

        The attack parameters, the device, precision and seed are added below from the engine's table
        (``SpectrumAttackLib.attacks.parameters``), with their types, ranges and defaults; the Audit and Harden
        sections use them too. Model names are not Choices: the lists (catalogue + hardened models) are filled
        by the sections, and a saved scene may name a model that is no longer there.
        """

        # Attack section
        inputVolume: vtkMRMLScalarVolumeNode
        referenceSegmentation: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
        model: str = "unet-btcv-3mm"
        modelPath: Path = Path()
        architecture: Annotated[str, Choice(ARCHITECTURES)] = "unet"
        numClasses: Annotated[int, WithinRange(0, 1000)] = 0  # 0: from the file, as the CLI's default
        attack: Annotated[str, Choice(tuple(attacks.available()))] = "saa"
        # Audit section
        auditVolume: vtkMRMLScalarVolumeNode
        auditReference: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
        auditModels: list[str]
        auditPreset: Annotated[str, Choice(AUDIT_PRESETS)] = "quick"
        auditGridFile: Path = Path()
        # Harden section
        hardenModel: str = "unet-btcv-3mm"
        hardenVolumes: list[vtkMRMLScalarVolumeNode]
        hardenSegmentations: list[Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]]  # noqa: UP007
        hardenValidation: list[bool]
        hardenMode: Annotated[str, Choice(("vaft", "adversarial", "normal"))] = "vaft"
        hardenAttack: Annotated[str, Choice(tuple(attacks.available()))] = "vafa-3d"
        hardenIterations: Annotated[int, WithinRange(1, 1_000_000)] = 200
        hardenOutput: Path = Path()

    for _row in SLICER_PARAMETERS:
        SpectrumAttackParameterNode.__annotations__[_row.slicer] = _fieldType(_row)
        setattr(SpectrumAttackParameterNode, _row.slicer, _row.default)
    SpectrumAttackParameterNode = parameterNodeWrapper(SpectrumAttackParameterNode)

#
# Widget
#

if APPLICATION:

    class SpectrumAttackWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
        """The panel: the Attack, Audit and Harden sections (``SpectrumAttackSections``), each bound to the one
        parameter node; this class only builds them and forwards the module's events."""

        def __init__(self, parent: Any = None) -> None:
            ScriptedLoadableModuleWidget.__init__(self, parent)
            VTKObservationMixin.__init__(self)
            self.logic: SpectrumAttackLogic | None = None
            self.sections: list[Any] = []
            self._parameterNode: Any = None
            self._guiTags: list[Any] = []

        def setup(self) -> None:
            ScriptedLoadableModuleWidget.setup(self)
            from SpectrumAttackSections import SECTIONS

            self.logic = SpectrumAttackLogic()
            self.sections = [section(self) for section in SECTIONS]
            for section in self.sections:
                self.layout.addWidget(section.button)
            from SpectrumAttackSections.compute import ComputeSection

            self.computeSection = ComputeSection(self.layout, self.resourcePath(f"UI/{ComputeSection.UI_FILE}"))
            self.layout.addStretch(1)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
            self.initializeParameterNode()

        def cleanup(self) -> None:
            for section in self.sections:
                section.stop()  # module unloaded or application closing: stop the runs, add nothing
            self.removeObservers()

        def enter(self) -> None:
            self.initializeParameterNode()
            for section in self.sections:
                section.enter()  # the catalogue, the hardened models or torch may have changed meanwhile

        def exit(self) -> None:
            self._disconnect()

        def onSceneStartClose(self, caller: Any, event: Any) -> None:
            for section in self.sections:
                section.stop()  # results of the closing scene must not land in the next one
            self.setParameterNode(None)

        def onSceneEndClose(self, caller: Any, event: Any) -> None:
            if self.parent.isEntered:
                self.initializeParameterNode()

        def onReload(self) -> None:
            """Developer reload: drop the engine, adapter and section modules so that their edits are loaded too."""
            packages = ("SpectrumAttackLib", "SpectrumAttackAdapter", "SpectrumAttackSections")
            for name in [n for n in sys.modules if n.split(".")[0] in packages]:
                del sys.modules[name]
            ScriptedLoadableModuleWidget.onReload(self)

        def initializeParameterNode(self) -> None:
            self.setParameterNode(self.logic.getParameterNode())
            for section in self.sections:
                section.initialize(self._parameterNode)

        def _disconnect(self) -> None:
            if self._parameterNode:
                for tag in self._guiTags:
                    self._parameterNode.disconnectGui(tag)
                self._guiTags = []
                self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onModified)

        def setParameterNode(self, parameterNode: Any) -> None:
            self._disconnect()
            self._parameterNode = parameterNode
            self.computeSection.setParameterNode(parameterNode)
            if parameterNode:
                self._guiTags = [parameterNode.connectGui(section.uiWidget) for section in self.sections]
                self.addObserver(parameterNode, vtk.vtkCommand.ModifiedEvent, self._onModified)
                self._onModified()

        def _onModified(self, caller: Any = None, event: Any = None) -> None:
            if self._parameterNode is not None:
                for section in self.sections:
                    section.update(self._parameterNode)

#
# Logic
#


class SpectrumAttackLogic(ScriptedLoadableModuleLogic):
    """Attack, audit and harden on nodes of ``slicer.mrmlScene`` (console, scripts, the sections).

    Each method checks its inputs, runs the dependency step before anything imports torch or MONAI, and delegates
    to ``SpectrumAttackAdapter`` (``attack_job``, ``audit_job``, ``harden_job``). ``wait=True`` runs in this
    process; ``wait=False`` a CLI module in the background (application only), cancelled when its scene closes.
    """

    def __init__(self) -> None:
        if APPLICATION:
            ScriptedLoadableModuleLogic.__init__(self)
        self._cancelRequested = False
        self.jobs = SceneJobs()

    # ------------------------------------------------------------------------------------------- scene
    def _scene(self) -> Any:
        """``slicer.mrmlScene``, with the module logics a run needs when no application provides them."""
        scene = getattr(slicer, "mrmlScene", None)
        if scene is None:
            raise ValueError("slicer.mrmlScene must be a vtkMRMLScene (assign one outside the application), got None.")
        segmentations_logic(scene)
        return scene

    def _moduleNode(self) -> Any:
        """The module's MRML parameter node, the singleton ``getParameterNode`` uses (it records hardened models)."""
        return model_list.module_node(self._scene())

    def _track(self, job: Any, onFinished: Any) -> Any:
        """Register a background job: cancelled when its scene closes, forgotten when it finishes."""
        return self.jobs.track(self._scene(), job, onFinished)

    # ---------------------------------------------------------------------------------- console API
    def run(self, inputVolume: Any, model: Any, attack: str = "saa", params: dict[str, Any] | None = None,
            referenceSegmentation: Any = None, wait: bool = True, *, device: str = "auto", precision: str = "auto",
            seed: int = 0, architecture: str | None = None, numClasses: int | None = None,
            modelArguments: dict[str, Any] | None = None, onProgress: Callable[[Any], None] | None = None,
            onFinished: Callable[[Any, str | None], None] | None = None, showResult: bool = True) -> Any:
        """Attack ``inputVolume`` and add the results to the scene.

        Args:
            inputVolume: scalar volume node (3-D, one component); never modified.
            model: catalogue name, a hardened model's name (:meth:`modelChoices`), a model path (checkpoint with
                ``architecture``/``numClasses``, TorchScript file, MONAI bundle or nnU-Net v2 folder; nnU-Net
                ``modelArguments``: ``folds``, ``checkpoint``, ``mirroring``) or a ``LoadedModel``.
            attack, params: any of ``attacks.available()``; its parameters by engine or GUI name (others raise).
            referenceSegmentation: optional segmentation (segments named after the model's classes) or labelmap.
            wait: True: in this process, returns a ``SpectrumAttackResult``. False (application only): the CLI
                module in the background; returns the job, ``onFinished(result, error)`` gets the result.
            device, precision, seed: ``"auto"``/``"cpu"``/``"cuda"``; ``"auto"``/``"fp32"``/``"bf16"``/``"fp16"``.
            onProgress: ``runtime.Progress`` (``wait=True``) or ``JobProgress`` reports; :meth:`cancel` stops.
            showResult: show clean and adversarial side by side (application only).

        Raises:
            ValueError: bad volume, model, attack or parameter; a reference with classes the model lacks;
                ``wait=False`` outside the application. ``inference.tiles.Cancelled``: cancelled, nothing added.
        """
        values = dict(params or {})
        settings = {*MODEL_SETTINGS, *(name for row in GENERAL_SETTINGS for name in (row.slicer, row.engine))}
        clash = sorted(set(values) & settings)
        if clash:
            raise ValueError(f"params must hold attack parameters only; pass {', '.join(clash)} as arguments of run.")
        chosen = self._modelSettings(model, architecture, numClasses, modelArguments)
        values.update(attack=attack, device=device, precision=precision, seed=seed, **chosen)
        check_input_volume(inputVolume)
        server = self.computeBackend()
        if server.kind == "server":  # the engine runs on the server: no PyTorch in Slicer
            return self._runOnServer(inputVolume, engine_arguments(values, strict=True), referenceSegmentation,
                                     server, wait, onProgress, onFinished, showResult)
        self.ensureDependencies()  # before anything imports torch or MONAI
        arguments = engine_arguments(values, strict=True)
        from SpectrumAttackAdapter import attack_job

        if wait:
            self._cancelRequested = False
            return attack_job.run_in_process(self._scene(), inputVolume, arguments, referenceSegmentation,
                                             onProgress, lambda: self._cancelRequested, showResult)
        job = attack_job.start_in_background(self._scene(), inputVolume, arguments.cli_parameters(),
                                             referenceSegmentation, onProgress, None, showResult)
        return self._track(job, onFinished)

    def audit(self, inputVolume: Any, model: Any, preset: Any = "quick", referenceSegmentation: Any = None, *,
              device: str = "auto", precision: str = "auto", seed: int = 0, metricsPreset: str = "clinical",
              output: str | os.PathLike | None = None, wait: bool = True,
              onProgress: Callable[[Any], None] | None = None, corruptions: Any = None,
              onFinished: Callable[[Any, str | None], None] | None = None) -> Any:
        """Robustness audit: every attack of the grid at every budget, on one or more volumes and models.

        Adds a table node of the cells and plot charts (Dice vs 3-D SSIM; Dice vs budget per attack) and returns
        the summary (worst-case robust Dice per model at SSIM 0.99, 0.95, 0.90; per attack its budget curve).

        Args:
            inputVolume, referenceSegmentation: a volume node or a list of them (distinct names); ground truth,
                one per volume, or None (Dice against the clean prediction).
            model: a model choice as for :meth:`run`, a list of them, or a dict label → model.
            preset: ``"quick"``, ``"standard"``, ``"paper"``, a grid file (YAML/JSON) or (``wait=True``) a dict.
            output: folder for ``report.html``, ``audit.csv``, ``curves.png``, ``audit.json``; ``wait=False``
                default: a new folder in Slicer's cache; None with ``wait=True``: no files.
            wait, onProgress, onFinished: as for :meth:`run` (the robustness CLI module runs it in the background).
            corruptions: the corruption track (scanner artefacts, severities 1-5): ``"all"``, names, ``{name:
                {"severity": [...]}}`` or ``"none"``; None keeps the preset's. Local and ``wait=True`` only.

        Returns:
            The summary, with ``"nodes"`` (table, chart and curve-table IDs) and ``"folder"``; or the job.
        """
        from SpectrumAttackAdapter import audit_job

        volumes = audit_job.as_list(inputVolume)
        references = audit_job.as_list(referenceSegmentation)
        audit_job.check_cases(volumes, references)
        if isinstance(model, dict):
            settings = [{**self._modelSettings(spec), "label": label} for label, spec in model.items()]
        else:
            hardened = model_list.hardened_models(self._moduleNode())
            settings = [{**self._modelSettings(m), **({"label": m} if isinstance(m, str) and m in hardened else {})}
                        for m in audit_job.as_list(model)]
        if not settings:
            raise ValueError("model must name at least one model, got none.")
        scene = self._scene()
        server = self.computeBackend()
        if server.kind == "server":  # the engine runs on the server: no PyTorch in Slicer
            from SpectrumAttackAdapter import remote

            if corruptions is not None:
                raise ValueError(f"corruptions must be None when the audit runs on a server (put a 'corruptions' "
                                 f"section into the grid instead), got {corruptions!r}.")
            return remote.audit_on_server(scene, volumes, references, model, preset, server, seed=seed,
                                          precision=precision, metrics_preset=metricsPreset, output=output,
                                          on_progress=onProgress)
        self.ensureDependencies()  # before anything imports torch or MONAI
        if wait:
            from SpectrumAttackAdapter.robustness_run import load_models

            self._cancelRequested = False
            return audit_job.audit_in_process(
                scene, volumes, references, load_models(settings, device), preset, output=output, device=device,
                precision=precision, seed=seed, metrics_preset=metricsPreset, on_progress=onProgress,
                should_stop=lambda: self._cancelRequested, corruptions=corruptions)
        if corruptions is not None:
            raise ValueError(f"corruptions must be None for a background audit (wait=False), got {corruptions!r}.")
        if not isinstance(preset, (str, os.PathLike)):
            raise ValueError(f"preset must be a preset name or a grid file for a background audit (wait=False), "
                             f"got a {type(preset).__name__}.")
        from SpectrumAttackAdapter.clirun import cli_module

        cli_module("spectrumattackrobustnesscli", "SpectrumAttackRobustnessCLI")
        job = audit_job.AuditJob(scene, volumes, references, settings, os.fspath(preset),
                                 output=Path(output or audit_job.default_output("audit", volumes[0].GetName())),
                                 device=device, precision=precision, seed=seed, metrics_preset=metricsPreset,
                                 on_progress=onProgress, on_finished=None)
        return self._track(job, onFinished).start()

    def harden(self, trainingData: Any, model: Any = "unet-btcv-3mm", mode: str = "vaft", attack: str = "vafa-3d",
               params: dict[str, Any] | None = None, iterations: int = 200, validationData: Any = None,
               output: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto", seed: int = 0,
               wait: bool = True, onProgress: Callable[[Any], None] | None = None,
               onFinished: Callable[[Any, str | None], None] | None = None, *, architecture: str | None = None,
               numClasses: int | None = None, modelArguments: dict[str, Any] | None = None,
               auditPreset: Any = "quick") -> Any:
        """Adversarially fine-tune ``model`` on labelled volumes, then audit it before and after (same grid).

        Args:
            trainingData: ``[(volume node, segmentation or labelmap node), ...]`` (labelmaps on the volume's grid,
                segments named after the model's classes), or a dataset folder / split file (``"training"``).
            model, architecture, numClasses, modelArguments: the model to fine-tune, as for :meth:`run`.
            mode: ``"vaft"`` (clean + adversarial DiceCE + frequency regulariser), ``"adversarial"``, ``"normal"``.
            attack, params: the attack making the adversarial examples, any of the parameter table.
            iterations: optimiser steps (≥ 1). validationData: pairs or a split file (``"validation"``) for
                validation Dice and the before/after audit; None: audited on the training pairs.
            output: a new folder for the hardened model (default: a new folder in Slicer's cache).
            wait, onProgress, onFinished: as for :meth:`run` (progress: iteration, loss, validation Dice, ETA).
            auditPreset: grid of the before/after audit.

        Returns:
            ``HardenOutcome`` (``modelName`` now in :meth:`modelChoices`, ``modelPath``, ``history``,
            ``comparison``, ``table``, ``chart``); or the job (``wait=False``).

        Raises:
            ValueError: no pairs, a segmentation off its volume's geometry or with classes the model lacks,
                iterations < 1, unknown mode or attack: one message, nothing written, no node added.
        """
        from SpectrumAttackAdapter import audit_job, harden_job

        training, validation, iterations = harden_job.check_harden_inputs(
            trainingData, validationData, iterations, mode, attack, self.computeBackend().kind)
        settings = self._modelSettings(model, architecture, numClasses, modelArguments)
        label = model if isinstance(model, str) and os.sep not in model else Path(os.fspath(model)).name
        self.ensureDependencies()  # before anything imports torch or MONAI
        engine_params = engine_arguments({"model": "-", "attack": attack, **(params or {})}, strict=True).params
        folder = Path(output) if output else audit_job.default_output(f"hardened-{mode}", label)
        common = {"mode": mode, "attack": attack, "params": engine_params, "iterations": iterations,
                  "output": folder, "grid": auditPreset, "device": device, "precision": precision, "seed": seed,
                  "on_progress": onProgress}
        scene, registry = self._scene(), self._moduleNode()
        if wait:
            self._cancelRequested = False
            return harden_job.harden_in_process(scene, registry, training, validation, settings, label, **common,
                                                should_stop=lambda: self._cancelRequested)
        from SpectrumAttackAdapter.clirun import cli_module

        cli_module("spectrumattackrobustnesscli", "SpectrumAttackRobustnessCLI")
        job = harden_job.HardenJob(scene, registry, training, validation, settings, label, **common, on_finished=None)
        return self._track(job, onFinished).start()

    def cancel(self) -> None:
        """Stop the running jobs: in-process ones at their next step, background ones (CLI process killed)."""
        self._cancelRequested = True
        self.jobs.cancel_all()

    def computeBackend(self) -> compute.Backend:
        """Where jobs run: the Compute section's choice on the module's parameter node (``"local"`` when none)."""
        return compute.backend(self.getParameterNode() if APPLICATION else compute.parameter_node(self._scene()))

    def _runOnServer(self, inputVolume: Any, arguments: Any, referenceSegmentation: Any, server: compute.Backend,
                     wait: bool, onProgress: Any, onFinished: Any, showResult: bool) -> Any:
        """:meth:`run` on a SpectrumAttack server: the same nodes as a local run (``SpectrumAttackAdapter.remote``)."""
        from SpectrumAttackAdapter import remote

        self._cancelRequested = False
        job = remote.attack_on_server(self._scene(), inputVolume, arguments, referenceSegmentation, server, wait=wait,
                                      on_progress=onProgress, cancel=lambda: self._cancelRequested,
                                      show_result=showResult)
        return job if wait else self._track(job, onFinished).start()

    # ------------------------------------------------------------------------------ parameter node
    def getParameterNode(self) -> Any:
        return SpectrumAttackParameterNode(super().getParameterNode())

    def cliParameters(self, parameterNode: Any) -> dict[str, Any]:
        """The Attack section's settings as CLI-module parameters (XML names), values as they are.

        Raises:
            ValueError: "my model (file)" is chosen without a model file.
        """
        p = parameterNode
        if p.model == USER_MODEL:
            if str(p.modelPath) in ("", "."):
                raise ValueError(f"modelPath must name a model file or folder when model is {USER_MODEL!r}, got ''.")
            values = {"model": str(p.modelPath), "architecture": p.architecture, "numClasses": p.numClasses}
        else:
            values = self._modelSettings(p.model)
        values["attack"] = p.attack
        values.update({row.slicer: getattr(p, row.slicer) for row in SLICER_PARAMETERS})
        return values

    def _modelSettings(self, model: Any, architecture: str | None = None, numClasses: int | None = None,
                       modelArguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Loading settings of a model choice (a hardened model's name: as recorded); given arguments win."""
        node = self._moduleNode() if getattr(slicer, "mrmlScene", None) is not None else None
        return model_list.resolve_model(node, model, architecture=architecture, numClasses=numClasses,
                                        modelArguments=modelArguments)

    def validationError(self, parameterNode: Any) -> str:
        """Why Apply cannot run yet ("" when it can)."""
        p = parameterNode
        try:
            check_input_volume(p.inputVolume)
        except ValueError as error:
            return str(error)
        if p.model == USER_MODEL:
            return "Choose the model file or folder." if str(p.modelPath) in ("", ".") else ""
        if p.model not in self.modelChoices():
            return f"Model {p.model!r} is not in the model list; choose another."
        return ""

    def runFromParameterNode(self, parameterNode: Any, onProgress: Any = None, onFinished: Any = None) -> Any:
        """Start a background attack (CLI module) with the parameter node's settings; returns the job."""
        check_input_volume(parameterNode.inputVolume)
        server = compute.backend(parameterNode)
        if server.kind == "server":
            arguments = engine_arguments(self.cliParameters(parameterNode), strict=False)
            return self._runOnServer(parameterNode.inputVolume, arguments, parameterNode.referenceSegmentation, server,
                                     False, onProgress, onFinished, True)
        self.ensureDependencies()  # before anything imports torch or MONAI
        from SpectrumAttackAdapter import attack_job

        job = attack_job.start_in_background(self._scene(), parameterNode.inputVolume,
                                             self.cliParameters(parameterNode), parameterNode.referenceSegmentation,
                                             onProgress, None, True)
        return self._track(job, onFinished)

    # ------------------------------------------------------------------------------------ GUI helpers
    def modelChoices(self) -> list[str]:
        """The model lists' entries: the catalogue, the models hardened in this scene, "my model (file)"."""
        return model_list.model_choices(self._moduleNode())

    def attackParameterNames(self, attack: str) -> set[str]:
        """Slicer names of the GUI's attack parameters that ``attack`` takes (from the table; no torch)."""
        return {row.slicer for row in parameters_of(attack) if row.slicer}

    def modelDescription(self, name: str) -> str:
        """One line about a model choice for the GUI."""
        return model_list.model_description(self._moduleNode(), name)

    def deviceSummary(self) -> str:
        """Installed PyTorch version and build for the GUI, read without importing torch."""
        from SpectrumAttackAdapter.dependencies import torch_summary

        return torch_summary()

    def ensureDependencies(self) -> None:
        """In the application: install torch (PyTorch extension) and the engine's packages on first use, after
        asking. Outside it (slicer-core, pytest) the environment is the caller's business."""
        if not APPLICATION:
            return
        from SpectrumAttackAdapter.dependencies import ensure_dependencies

        ensure_dependencies(REQUIREMENTS_FILE)


#
# Self-test
#

_TestBase = ScriptedLoadableModuleTest if APPLICATION else unittest.TestCase


class SpectrumAttackTest(_TestBase):
    """Reload & Test: the Logic on a synthetic CT-like volume with a tiny MONAI UNet (random weights), on
    ``slicer.mrmlScene``. Also run by the project's pytest suite on a ``slicer-core`` scene."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear(0)

    def _requireEngine(self) -> None:
        reason = selftest.missing_engine(REQUIREMENTS_FILE)
        if reason:
            self.skipTest(f"SpectrumAttack self-test skipped: {reason}.")

    def runTest(self) -> None:
        """Reload & Test (``slicer.selfTests``): every test below; only a message when the engine is missing."""
        reason = selftest.missing_engine(REQUIREMENTS_FILE)
        if reason:
            self._message(f"SpectrumAttack self-test skipped: {reason}.")
            return
        for test in (self.test_bad_inputs, self.test_attack_adds_results, self.test_background_run_and_cancel):
            self.setUp()
            test()

    def _message(self, text: str) -> None:
        if APPLICATION:
            self.delayDisplay(text)
        else:
            logging.info(text)

    def test_bad_inputs(self) -> None:
        self._requireEngine()
        selftest.bad_inputs(self, SpectrumAttackLogic)

    def test_attack_adds_results(self) -> None:
        self._requireEngine()
        selftest.attack_adds_results(self, SpectrumAttackLogic)

    def test_background_run_and_cancel(self) -> None:
        """The Widget's path: the CLI module in the background, then a cancelled run (application only)."""
        self._requireEngine()
        selftest.background_run_and_cancel(self, SpectrumAttackLogic)
