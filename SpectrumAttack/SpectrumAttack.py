"""SpectrumAttack: adversarial attacks on volumetric segmentation models, in 3D Slicer.

Five parts, in the order of Slicer's scripted-module template: the module, its parameter node, the Widget, the
Logic and the self-test. Only the Logic is needed outside the application: with ``slicer-core`` alone (no Qt, no
``ScriptedLoadableModule``, no ``parameterNodeWrapper``) this file still imports and ``SpectrumAttackLogic`` runs
on ``slicer.mrmlScene``; the application-only parts are defined when their imports are available.

Console use (see ``SpectrumAttackLogic.run``)::

    logic = slicer.util.getModuleLogic("SpectrumAttack")
    result = logic.run(slicer.util.getNode("CTChest"), model="unet-btcv-3mm", attack="saa",
                       params={"steps": 10, "rho": 0.2, "block_size": 32, "lambda_dice": 0.01})
    print(result.metrics["adversarial"]["dice"])
    summary = logic.audit(slicer.util.getNode("CTChest"), model="unet-btcv-3mm", preset="quick")
    print(summary["per_model"]["unet-btcv-3mm"]["robust_dice"])
"""

from __future__ import annotations  # annotations stay text: nothing of 3.10+ is evaluated before the check below

import sys

#: Slicer 5.10 and later ship Python 3.12; Slicer 5.8 and older ship Python 3.9, which the engine does not support.
MINIMUM_PYTHON = (3, 10)
if sys.version_info < MINIMUM_PYTHON:
    raise ImportError(
        "SpectrumAttack needs 3D Slicer 5.10 or later (Python 3.12); this Slicer runs Python "
        + sys.version.split()[0] + ". Install the current Slicer from https://download.slicer.org."
    )

import dataclasses  # noqa: E402 - after the version check, as every import below
import importlib.util  # noqa: E402
import logging  # noqa: E402
import unittest  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, Union  # noqa: E402

import numpy as np  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402


def _addSourcePaths() -> None:
    """Source-tree runs (``--additional-module-paths``): the engine sits in the repository root, the adapter next
    to this file. Installed extensions have both in ``qt-scripted-modules`` already."""
    here = Path(__file__).resolve().parent
    for name, folder in (("SpectrumAttackLib", here.parent), ("SpectrumAttackAdapter", here)):
        try:
            __import__(name)
        except ImportError:
            sys.path.insert(0, str(folder))


_addSourcePaths()

from SpectrumAttackAdapter import compute  # noqa: E402 - after the source paths
from SpectrumAttackAdapter.arguments import (  # noqa: E402
    MODEL_SETTINGS,
    EngineArguments,
    engine_arguments,
    run_engine,
)
from SpectrumAttackAdapter.results import SpectrumAttackResult, write_result  # noqa: E402
from SpectrumAttackAdapter.segmentations import reference_labels, segmentations_logic  # noqa: E402
from SpectrumAttackAdapter.volumes import check_input_volume, volume_to_ijk  # noqa: E402

from SpectrumAttackLib import attacks  # noqa: E402 - torch-free registry
from SpectrumAttackLib.attacks.parameters import (  # noqa: E402 - the one table of attack parameters, torch-free
    GENERAL_SETTINGS,
    SLICER_PARAMETERS,
    Parameter,
    parameters_of,
)
from SpectrumAttackLib.models.catalogue import ARCHITECTURES, get_entry, load_catalogue  # noqa: E402

#: Whether this runs inside the Slicer application (PythonQt's ``qt`` exists) or on slicer-core alone (pytest,
#: PythonSlicer scripts). Only the application has Qt, the scripted-module base classes and the parameter node
#: wrapper; an import error there is a real error and is not hidden.
APPLICATION = importlib.util.find_spec("qt") is not None

if APPLICATION:
    import ctk  # noqa: F401 - loaded for the .ui file's ctk widgets
    from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
    from slicer.i18n import tr as _
    from slicer.i18n import translate
    from slicer.parameterNodeWrapper import (
        Choice,
        WithinRange,
        findChildWidgetForParameter,
        parameterNodeWrapper,
    )
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )
    from slicer.util import VTKObservationMixin
else:  # slicer-core: the Logic and the self-test's checks only
    ScriptedLoadableModuleLogic = object

#: Model choice meaning "the file in modelPath".
USER_MODEL = "my model (file)"
#: Non-torch Python packages of the engine, installed on first use in the application.
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "Resources" / "requirements.txt"


def _catalogueNames() -> list[str]:
    try:
        return [entry.name for entry in load_catalogue()]
    except (FileNotFoundError, ValueError) as error:  # a broken install must not stop the module from loading
        logging.warning("SpectrumAttack: the model catalogue could not be read: %s", error)
        return []


def _classDicts(classes: Any) -> list[dict[str, Any]]:
    """``[{"id", "name", "rgb"}]`` from catalogue ``ClassInfo`` objects."""
    return [{"id": c.id, "name": c.name, "rgb": list(c.rgb)} for c in classes]


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
                "Measure how robust a volumetric segmentation model is against adversarial perturbations. "
                "SA² (Spectrum Adversarial Attack) scales the 3-D DCT coefficients of image blocks by learned factors "
                "in [1−ρ, 1+ρ]; VAFA learns a DCT quantisation table per block; PGD, FGSM, BIM, Gaussian noise, "
                "SegPGD and CosPGD perturb voxels. Results: the adversarial volume (input geometry and units), the "
                "perturbation, clean and adversarial segmentations and a table of Dice, HD95, SSIM, PSNR and "
                "fooling rate.<br><br>"
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
        """Everything needed to repeat a run from a saved scene; names as in ``SpectrumAttackCLI.xml``.

        The attack parameters, the device and the seed are added below from the engine's table
        (``SpectrumAttackLib.attacks.parameters``), with their types, ranges and defaults.
        """

        inputVolume: vtkMRMLScalarVolumeNode
        referenceSegmentation: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
        model: str = "unet-btcv-3mm"  # not a Choice: the catalogue is read when the GUI shows it (a saved scene
        # may name a model that is no longer in it); the Widget fills the model list itself
        modelPath: Path = Path()
        architecture: Annotated[str, Choice(ARCHITECTURES)] = "unet"
        numClasses: Annotated[int, WithinRange(0, 1000)] = 14
        attack: Annotated[str, Choice(tuple(attacks.available()))] = "saa"

    for _row in SLICER_PARAMETERS:
        SpectrumAttackParameterNode.__annotations__[_row.slicer] = _fieldType(_row)
        setattr(SpectrumAttackParameterNode, _row.slicer, _row.default)
    SpectrumAttackParameterNode = parameterNodeWrapper(SpectrumAttackParameterNode)

#
# Widget
#

if APPLICATION:

    class SpectrumAttackWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
        """GUI: bound to the parameter node; Apply runs the CLI module in the background and turns into Cancel."""

        def __init__(self, parent: Any = None) -> None:
            ScriptedLoadableModuleWidget.__init__(self, parent)
            VTKObservationMixin.__init__(self)
            self.logic: SpectrumAttackLogic | None = None
            self._parameterNode: Any = None
            self._parameterNodeGuiTag: Any = None
            self._job: Any = None

        def setup(self) -> None:
            ScriptedLoadableModuleWidget.setup(self)
            uiWidget = slicer.util.loadUI(self.resourcePath("UI/SpectrumAttack.ui"))
            self.layout.addWidget(uiWidget)
            self.ui = slicer.util.childWidgetVariables(uiWidget)
            #: The widget bound to each table row (its ``SlicerParameterName``); its label is ``<name>Label``.
            self._parameterWidgets = {row.slicer: findChildWidgetForParameter(uiWidget, row.slicer)
                                      for row in SLICER_PARAMETERS}
            uiWidget.setMRMLScene(slicer.mrmlScene)
            self.logic = SpectrumAttackLogic()
            self.ui.progressBar.visible = False
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
            self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
            self.ui.modelSelector.connect("currentIndexChanged(int)", self._onModelSelected)
            from SpectrumAttackSections.compute import ComputeSection

            self.computeSection = ComputeSection(self.layout, self.resourcePath("UI/ComputeSection.ui"))
            self.initializeParameterNode()
            self.ui.deviceInfoLabel.text = self.logic.deviceSummary()

        def cleanup(self) -> None:
            self._stopJob()  # module unloaded or application closing: stop the run, add nothing
            self.removeObservers()

        def _stopJob(self) -> None:
            """Cancel a running job for good (scene close, cleanup): its nodes are removed, nothing is imported,
            and the panel is ready again at once (the job's late "cancelled" report changes nothing)."""
            if self._job is None:
                return
            job, self._job = self._job, None
            job.cancel()
            self.ui.applyButton.text = _("Apply")
            self.ui.progressBar.visible = False
            self.ui.statusLabel.text = _("Cancelled; no nodes were added.")

        def enter(self) -> None:
            self.initializeParameterNode()
            self._showModelList()  # the catalogue may have changed since the module was last shown
            self.ui.deviceInfoLabel.text = self.logic.deviceSummary()  # torch may have been installed meanwhile

        def exit(self) -> None:
            if self._parameterNode:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None
                self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

        def onSceneStartClose(self, caller: Any, event: Any) -> None:
            self._stopJob()  # results of the closing scene must not land in the next one
            self.setParameterNode(None)

        def onSceneEndClose(self, caller: Any, event: Any) -> None:
            if self.parent.isEntered:
                self.initializeParameterNode()

        def onReload(self) -> None:
            """Developer reload: drop the engine and adapter modules so that their edits are loaded too."""
            for name in [n for n in sys.modules if n.split(".")[0] in ("SpectrumAttackLib", "SpectrumAttackAdapter")]:
                del sys.modules[name]
            ScriptedLoadableModuleWidget.onReload(self)

        def initializeParameterNode(self) -> None:
            self.setParameterNode(self.logic.getParameterNode())
            if not self._parameterNode.inputVolume:
                first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
                if first and not first.IsA("vtkMRMLLabelMapVolumeNode"):
                    self._parameterNode.inputVolume = first

        def setParameterNode(self, parameterNode: Any) -> None:
            if self._parameterNode:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._parameterNode = parameterNode
            self.computeSection.setParameterNode(parameterNode)
            if self._parameterNode:
                self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
                self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
                self._onParameterNodeModified()

        def _showModelList(self) -> None:
            """The catalogue as it is now, plus "my model (file)"; a saved model name that is no longer in the
            catalogue stays selected (Apply then says why it cannot run)."""
            names = [*_catalogueNames(), USER_MODEL]
            current = self._parameterNode.model
            wasBlocked = self.ui.modelSelector.blockSignals(True)
            self.ui.modelSelector.clear()
            self.ui.modelSelector.addItems(names if current in names else [*names, current])
            self.ui.modelSelector.currentText = current
            self.ui.modelSelector.blockSignals(wasBlocked)

        def _onModelSelected(self, index: int) -> None:
            if self._parameterNode is not None and index >= 0:
                self._parameterNode.model = self.ui.modelSelector.currentText

        def _onParameterNodeModified(self, caller: Any = None, event: Any = None) -> None:
            p = self._parameterNode
            if p is None:  # between scene close and the next scene
                return
            if self.ui.modelSelector.currentText != p.model or self.ui.modelSelector.count == 0:
                self._showModelList()
            self.ui.userModelWidget.visible = p.model == USER_MODEL
            self.ui.modelDescriptionLabel.text = self.logic.modelDescription(p.model)
            used = self.logic.attackParameterNames(p.attack)
            for row in SLICER_PARAMETERS:
                if row.attacks is not None:  # attack parameters: only the chosen attack's rows are shown
                    self._parameterWidgets[row.slicer].visible = row.slicer in used
                    getattr(self.ui, f"{row.slicer}Label").visible = row.slicer in used
            if self._job is None:
                reason = self.logic.validationError(p)
                self.ui.applyButton.enabled = not reason
                self.ui.applyButton.toolTip = reason or _("Run the attack in the background.")

        def onApplyButton(self) -> None:
            if self._job is not None:
                self._job.cancel()
                self.ui.applyButton.enabled = False
                self.ui.statusLabel.text = _("Cancelling...")
                return
            with slicer.util.tryWithErrorDisplay(_("Failed to start the attack."), waitCursor=True):
                started: list[Any] = []

                def current() -> bool:  # a job stopped by _stopJob reports to nobody
                    return bool(started) and started[0] is self._job

                def progress(report: Any) -> None:
                    if current():
                        self._onProgress(report)

                def finished(result: SpectrumAttackResult | None, error: str | None) -> None:
                    if current():
                        self._onFinished(result, error)

                try:
                    self._job = self.logic.runFromParameterNode(self._parameterNode, onProgress=progress,
                                                                onFinished=finished)
                    started.append(self._job)
                finally:  # the dependency step may have installed PyTorch
                    self.ui.deviceInfoLabel.text = self.logic.deviceSummary()
                self.ui.applyButton.text = _("Cancel")
                self.ui.progressBar.value = 0
                self.ui.progressBar.visible = True
                self.ui.statusLabel.text = _("Starting...")

        def _onProgress(self, progress: Any) -> None:
            self.ui.progressBar.value = round(100 * progress.fraction)
            step = f"{progress.stage} {progress.done}/{progress.total}" if progress.total else _("starting")
            eta = progress.eta_seconds
            self.ui.statusLabel.text = step + ("" if eta is None else f", ETA {int(eta) // 60}:{int(eta) % 60:02d}")

        def _onFinished(self, result: SpectrumAttackResult | None, error: str | None) -> None:
            self._job = None
            self.ui.applyButton.text = _("Apply")
            self.ui.progressBar.visible = False
            self._onParameterNodeModified()
            if result is not None:
                clean, adversarial = (result.metrics.get(k, {}).get("dice") for k in ("clean", "adversarial"))
                self.ui.statusLabel.text = _("Done in {seconds:.1f} s. Mean Dice {clean} → {adversarial}.").format(
                    seconds=result.seconds, clean=_fmt(clean), adversarial=_fmt(adversarial))
            elif error == "cancelled":
                self.ui.statusLabel.text = _("Cancelled; no nodes were added.")
            else:
                self.ui.statusLabel.text = _("Failed.")
                lines = [line for line in (error or "").splitlines() if line.strip()]
                cause = lines[-1] if lines else _("unknown error")  # the CLI's one-line error comes last
                slicer.util.errorDisplay(_("The attack failed: {cause}").format(cause=cause),
                                         detailedText=error or "")


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


#
# Logic
#


class SpectrumAttackLogic(ScriptedLoadableModuleLogic):
    """Runs attacks on volume nodes of ``slicer.mrmlScene``; usable from the Python console and from scripts.

    In the application the Widget runs the CLI module in the background (:meth:`runFromParameterNode`); the console
    API :meth:`run` runs the engine in-process (``wait=True``, also outside the application with ``slicer-core``)
    or through the CLI module (``wait=False``). Both write the same nodes (:class:`SpectrumAttackResult`).
    """

    def __init__(self) -> None:
        if APPLICATION:
            ScriptedLoadableModuleLogic.__init__(self)
        self._cancelRequested = False
        self._job: Any = None

    # ------------------------------------------------------------------------------------------- scene
    def _scene(self) -> Any:
        """``slicer.mrmlScene``, with the module logics a run needs when no application provides them."""
        scene = getattr(slicer, "mrmlScene", None)
        if scene is None:
            raise ValueError("slicer.mrmlScene must be a vtkMRMLScene (assign one outside the application), got None.")
        segmentations_logic(scene)
        return scene

    # ---------------------------------------------------------------------------------- console API
    def run(
        self,
        inputVolume: Any,
        model: Any,
        attack: str = "saa",
        params: dict[str, Any] | None = None,
        referenceSegmentation: Any = None,
        wait: bool = True,
        *,
        device: str = "auto",
        precision: str = "auto",
        seed: int = 0,
        architecture: str | None = None,
        numClasses: int | None = None,
        modelArguments: dict[str, Any] | None = None,
        onProgress: Callable[[Any], None] | None = None,
        onFinished: Callable[[SpectrumAttackResult | None, str | None], None] | None = None,
        showResult: bool = True,
    ) -> Any:
        """Attack ``inputVolume`` and add the results to the scene.

        Args:
            inputVolume: scalar volume node (3-D, one component); never modified.
            model: catalogue name (``"unet-btcv-3mm"``), a model path (checkpoint ``.pt``/``.pth`` with
                ``architecture`` and ``numClasses``, a TorchScript file, a MONAI bundle folder or an nnU-Net v2
                trained-model folder, whose ``modelArguments`` may be ``folds``, ``checkpoint``, ``mirroring``), or
                a ``SpectrumAttackLib.models.LoadedModel``.
            attack: ``"saa"``, ``"saa-2d"``, ``"vafa-3d"``, ``"vafa-2d"``, ``"pgd"``, ``"fgsm"``, ``"bim"``, ``"gn"``,
                ``"segpgd"``, ``"cospgd"``, ``"ssa-2d"``, ``"dfb"`` or ``"dfb-2d"``.
            params: attack parameters by engine name (``steps``, ``rho``, ``block_size``, ``lambda_dice``,
                ``use_ssim_loss``, ``lambda_ssim``, ``freq_band``, ``q_max``, ``variant``, ``eps`` and ``std`` on the
                0–255 scale, ``alpha``, ``beta``, ...) or by the GUI's camelCase name (``blockSize``, ...).
                Unknown or inapplicable names raise. Defaults: the attack's own.
            referenceSegmentation: optional segmentation (segments named after the model's classes) or labelmap
                node (class ids): the ground truth for Dice/HD95 and the labels the attack pushes away from.
            wait: True: run in this process and return the result. False (application only): run the CLI module in
                the background and return its job (``job.cancel()``); ``onFinished(result, error)`` gets the result.
            device, seed: ``"auto"``/``"cpu"``/``"cuda"``; seed of the attack's random draws.
            precision: of the model passes: ``"auto"`` (bf16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs with
                bf16, else fp32), ``"fp32"`` (bit-for-bit reproducible), ``"bf16"`` or ``"fp16"`` (CUDA only).
                What ran is in the result's ``metrics["precision_used"]`` and ``attackConfig``.
            architecture, numClasses, modelArguments: for checkpoint paths: ``unet``/``unet-r``/``swin-unetr``,
                class count, extra ``build_model`` keywords (``wait=True`` only).
            onProgress: called with ``SpectrumAttackLib.runtime.Progress`` (``wait=True``) or a ``JobProgress``
                (``wait=False``); call :meth:`cancel` from it to stop.
            onFinished: ``wait=False`` only, see above.
            showResult: show clean and adversarial side by side (application only).

        Returns:
            ``wait=True``: a :class:`SpectrumAttackResult` (nodes + metrics). ``wait=False``: the running job.

        Raises:
            ValueError: bad volume (none, 2-D, RGB/vector, labelmap), unknown model, attack or parameter, a
                reference with classes the model does not have, or a mismatching checkpoint.
            SpectrumAttackLib.inference.tiles.Cancelled: :meth:`cancel` was called; no node was added.
        """
        values = dict(params or {})
        settings = {*MODEL_SETTINGS, *(name for row in GENERAL_SETTINGS for name in (row.slicer, row.engine))}
        clash = sorted(set(values) & settings)
        if clash:
            raise ValueError(f"params must hold attack parameters only; pass {', '.join(clash)} as arguments of run.")
        values.update(model=model, attack=attack, device=device, precision=precision, seed=seed,
                      architecture=architecture,
                      numClasses=numClasses, modelArguments=modelArguments)
        check_input_volume(inputVolume)
        server = self.computeBackend()
        if server.kind == "server":  # the engine runs on the server: no PyTorch in Slicer
            return self._runOnServer(inputVolume, engine_arguments(values, strict=True), referenceSegmentation,
                                     server, wait, onProgress, onFinished, showResult)
        self.ensureDependencies()  # before anything imports torch or MONAI
        arguments = engine_arguments(values, strict=True)
        if wait:
            return self._runInProcess(inputVolume, arguments, referenceSegmentation, onProgress, showResult)
        return self._runInBackground(inputVolume, arguments.cli_parameters(), referenceSegmentation, onProgress,
                                     onFinished, showResult)

    def audit(
        self,
        inputVolume: Any,
        model: Any,
        preset: Any = "quick",
        referenceSegmentation: Any = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        seed: int = 0,
        metricsPreset: str = "clinical",
        output: str | None = None,
        onProgress: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """Robustness audit of ``inputVolume``: every attack of the grid at every budget (in this process).

        Adds a table node of the cells and plot chart nodes of the curves (Dice vs 3-D SSIM for every attack; Dice
        vs budget per attack) to the scene, and returns the summary (worst-case robust Dice per model at SSIM 0.99,
        0.95 and 0.90, per attack the half-clean-Dice budget and the area under its Dice-vs-budget curve); see
        ``SpectrumAttackLib.workflows.audit``.

        Args:
            inputVolume: scalar volume node; never modified.
            model: a catalogue name, TorchScript file, MONAI bundle folder or ``LoadedModel``; a list of them, or a
                dict label → model, to compare models side by side.
            preset: ``"quick"``, ``"standard"``, ``"paper"``, a grid file (YAML/JSON) or a grid dictionary.
            referenceSegmentation: optional segmentation or labelmap node with the ground truth (as in :meth:`run`);
                None: Dice against the clean prediction.
            device, precision, seed, metricsPreset: where models given by name are loaded; the model passes'
                precision (``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``); the attacks' seed; ``"clinical"`` or
                ``"paper"`` metrics.
            output: optional folder for the result files (``audit.csv``, ``report.html``, ...).
            onProgress: called after each cell with ``SpectrumAttackLib.runtime.Progress``.

        Returns:
            The summary dictionary, with ``"nodes"``: the IDs of the table and chart nodes added.
        """
        scene = self._scene()
        array, ijkToRas = volume_to_ijk(inputVolume)
        server = self.computeBackend()
        if server.kind == "server":  # the engine runs on the server: no PyTorch in Slicer
            from SpectrumAttackAdapter.remote import run_audit

            compute.ensure_client_dependencies()
            result = run_audit(scene, inputVolume, model, preset, referenceSegmentation, server, seed=seed,
                               precision=precision, metrics_preset=metricsPreset, output=output,
                               on_progress=onProgress)
            return self._auditSummary(scene, inputVolume, result)
        from SpectrumAttackLib.workflows.robustness import audit, audit_models

        self.ensureDependencies()
        audited, loaded = audit_models(model, device)
        models = {m.label: spec for m, spec in zip(audited, loaded, strict=True)}
        reference = None
        if referenceSegmentation is not None:
            classes = _classDicts(loaded[0].entry.classes)
            reference = reference_labels(scene, referenceSegmentation, inputVolume, classes)
        result = audit((array, ijkToRas), models=models, labels=reference, grid=preset, output=output, seed=seed,
                       precision=precision, metrics_preset=metricsPreset, name=inputVolume.GetName(),
                       progress=onProgress)
        return self._auditSummary(scene, inputVolume, result)

    def _auditSummary(self, scene: Any, inputVolume: Any, result: Any) -> dict[str, Any]:
        """The audit's table and chart nodes in the scene, and its summary with their IDs (local or server)."""
        from SpectrumAttackAdapter.audit_nodes import audit_nodes

        nodes = audit_nodes(scene, result.cells, result.summary, inputVolume.GetName())
        summary = dict(result.summary)
        summary["nodes"] = {"table": nodes["table"].GetID(), "charts": [c.GetID() for c in nodes["charts"]],
                            "curves": [c.GetID() for c in nodes["curves"]]}
        logging.info("SpectrumAttack: audit of %s, %d cells", inputVolume.GetName(), len(result.cells))
        return summary

    def cancel(self) -> None:
        """Stop the running attack (in-process: at the next step; background: the CLI process is killed)."""
        self._cancelRequested = True
        if self._job is not None:
            self._job.cancel()

    def computeBackend(self) -> compute.Backend:
        """Where jobs run: the Compute section's choice on the module's parameter node (``"local"`` when none)."""
        return compute.backend(self.getParameterNode() if APPLICATION else compute.parameter_node(self._scene()))

    def _runOnServer(self, inputVolume: Any, arguments: EngineArguments, referenceSegmentation: Any,
                     server: compute.Backend, wait: bool, onProgress: Any, onFinished: Any, showResult: bool) -> Any:
        """:meth:`run` on a SpectrumAttack server (``SpectrumAttackAdapter.remote``): the same nodes as a local run;
        ``wait=False`` follows the job from Qt's event loop (application only)."""
        from SpectrumAttackAdapter import remote

        compute.ensure_client_dependencies()
        self._cancelRequested = False
        if wait:
            output = remote.run_attack(self._scene(), inputVolume, arguments, referenceSegmentation, server,
                                       on_progress=onProgress, cancel=lambda: self._cancelRequested)
            if showResult:
                from SpectrumAttackAdapter.layout import show_side_by_side

                show_side_by_side(inputVolume, output)
            return output

        def finished(result: SpectrumAttackResult | None, error: str | None) -> None:
            self._job = None
            if onFinished is not None:
                onFinished(result, error)

        self._job = remote.RemoteAttackJob(self._scene(), inputVolume, arguments, referenceSegmentation, server,
                                           onProgress, finished)
        return self._job.start()

    def _runInProcess(self, inputVolume: Any, arguments: EngineArguments, referenceSegmentation: Any,
                      onProgress: Any, showResult: bool) -> SpectrumAttackResult:
        scene = self._scene()
        array, ijkToRas = volume_to_ijk(inputVolume)
        loaded = arguments.load_model()
        arguments = dataclasses.replace(arguments, model=loaded)
        reference = None
        if referenceSegmentation is not None:
            reference = reference_labels(scene, referenceSegmentation, inputVolume, _classDicts(loaded.entry.classes))
        self._cancelRequested = False
        result = run_engine(arguments, array, ijkToRas, reference_labels=reference, progress=onProgress,
                            cancel=lambda: self._cancelRequested, labels_name="referenceSegmentation")
        output = write_result(scene, inputVolume, result, arguments.attack)
        if showResult:
            from SpectrumAttackAdapter.layout import show_side_by_side

            show_side_by_side(inputVolume, output)
        logging.info("SpectrumAttack: %s on %s in %.1f s", arguments.attack, inputVolume.GetName(), result.seconds)
        return output

    def _runInBackground(self, inputVolume: Any, cliParameters: dict[str, Any], referenceSegmentation: Any,
                         onProgress: Any, onFinished: Any, showResult: bool) -> Any:
        """Start the CLI module with ``cliParameters`` (XML names, values as the front end holds them: the CLI
        process converts them, once)."""
        if getattr(getattr(slicer, "modules", None), "spectrumattackcli", None) is None:
            raise ValueError("wait must be True outside the Slicer application (wait=False runs the "
                             "SpectrumAttackCLI module), got False.")
        from SpectrumAttackAdapter.clijob import CLIJob
        from SpectrumAttackAdapter.layout import show_side_by_side

        scene = self._scene()
        reference = None
        if referenceSegmentation is not None:
            model = cliParameters["model"]
            classes = (get_entry(model).classes if model in _catalogueNames()
                       else engine_arguments(cliParameters, strict=False).load_model().entry.classes)
            reference = reference_labels(scene, referenceSegmentation, inputVolume, _classDicts(classes))

        def finished(result: SpectrumAttackResult | None, error: str | None) -> None:
            self._job = None
            try:
                if result is not None and showResult:
                    show_side_by_side(inputVolume, result)
            except Exception:  # a layout problem must not keep the caller waiting (the button on "Cancel")
                logging.exception("SpectrumAttack: showing the result failed")
            finally:
                if onFinished is not None:
                    onFinished(result, error)

        self._job = CLIJob(scene, inputVolume, cliParameters, reference, cliParameters["attack"], onProgress,
                           finished)
        return self._job.start()

    # ------------------------------------------------------------------------------ parameter node
    def getParameterNode(self) -> Any:
        return SpectrumAttackParameterNode(super().getParameterNode())

    def cliParameters(self, parameterNode: Any) -> dict[str, Any]:
        """The parameter node's settings as CLI-module parameters (XML names), values as they are.

        Raises:
            ValueError: "my model (file)" is chosen without a model file.
        """
        p = parameterNode
        if p.model != USER_MODEL:
            values = {"model": p.model}
        elif str(p.modelPath) in ("", "."):
            raise ValueError(f"modelPath must name a model file when model is {USER_MODEL!r}, got ''.")
        else:
            values = {"model": str(p.modelPath), "architecture": p.architecture, "numClasses": p.numClasses}
        values["attack"] = p.attack
        values.update({row.slicer: getattr(p, row.slicer) for row in SLICER_PARAMETERS})
        return values

    def validationError(self, parameterNode: Any) -> str:
        """Why Apply cannot run yet ("" when it can)."""
        p = parameterNode
        try:
            check_input_volume(p.inputVolume)
        except ValueError as error:
            return str(error)
        if p.model == USER_MODEL:
            return "Choose the model file." if str(p.modelPath) in ("", ".") else ""
        if p.model not in _catalogueNames():
            return f"Model {p.model!r} is not in the model catalogue; choose another."
        return ""

    def runFromParameterNode(self, parameterNode: Any, onProgress: Any = None, onFinished: Any = None) -> Any:
        """Start a background run (CLI module) with the parameter node's settings; returns the job."""
        check_input_volume(parameterNode.inputVolume)
        server = compute.backend(parameterNode)
        if server.kind == "server":
            arguments = engine_arguments(self.cliParameters(parameterNode), strict=False)
            return self._runOnServer(parameterNode.inputVolume, arguments, parameterNode.referenceSegmentation, server,
                                     False, onProgress, onFinished, True)
        self.ensureDependencies()  # before anything imports torch or MONAI
        return self._runInBackground(parameterNode.inputVolume, self.cliParameters(parameterNode),
                                     parameterNode.referenceSegmentation, onProgress, onFinished, True)

    # ------------------------------------------------------------------------------------ GUI helpers
    def attackParameterNames(self, attack: str) -> set[str]:
        """Slicer names of the GUI's attack parameters that ``attack`` takes (from the table; no torch)."""
        return {row.slicer for row in parameters_of(attack) if row.slicer}

    def modelDescription(self, name: str) -> str:
        """One line about a catalogue model for the GUI."""
        if name == USER_MODEL:
            return "A checkpoint, TorchScript file, MONAI bundle or nnU-Net v2 model folder of your own."
        try:
            entry = get_entry(name)
        except (FileNotFoundError, ValueError):
            return ""
        spacing = " × ".join(f"{s:g}" for s in entry.preprocessing.spacing_mm)
        return f"{entry.description} ({entry.num_classes - 1} organs, {spacing} mm)".strip()

    def deviceSummary(self) -> str:
        """Torch version, CUDA build and GPU for the GUI."""
        from SpectrumAttackAdapter.dependencies import torch_summary

        try:
            return torch_summary()
        except Exception as error:  # a broken torch install must not break the module panel
            return f"PyTorch could not be loaded: {error}"

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

    def runTest(self) -> None:
        self.setUp()
        self.test_bad_inputs()
        if importlib.util.find_spec("torch") is None:  # never install gigabytes on a test machine
            reason = "PyTorch is not installed: the attack tests are skipped (install it with PyTorch Utils)."
            if APPLICATION:
                self._message(reason)
                return
            self.skipTest(reason)
        self.setUp()
        self.test_attack_adds_results()
        self.setUp()
        self.test_background_run_and_cancel()

    def _message(self, text: str) -> None:
        if APPLICATION:
            self.delayDisplay(text)
        else:
            logging.info(text)

    def _volume(self, shape: tuple[int, int, int] = (24, 20, 16)) -> Any:
        """A CT-like volume (HU): air, a soft-tissue body, a brighter organ; 3 mm voxels, RAS."""
        i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
        array = np.full(shape, -1000.0, dtype=np.float32)
        array[i**2 + j**2 < 0.8] = 40.0
        array[(i - 0.3) ** 2 + j**2 + k**2 < 0.2] = 150.0
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "SpectrumAttackTestCT")
        node.SetSpacing(3.0, 3.0, 3.0)
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array.transpose(2, 1, 0)))
        return node

    def _tinyModel(self) -> Any:
        import torch

        from SpectrumAttackLib.models import LoadedModel, build_model

        entry = get_entry(_catalogueNames()[0])
        torch.manual_seed(0)
        net = build_model(entry.architecture, entry.num_classes, channels=(4, 8), strides=(2,), num_res_units=0)
        return LoadedModel(model=net.eval(), entry=entry, report=None)

    def test_bad_inputs(self) -> None:
        self._message("Bad inputs are refused")
        logic = SpectrumAttackLogic()
        with self.assertRaisesRegex(ValueError, "inputVolume"):
            logic.run(None, model="unet-btcv-3mm")
        flat = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "flat")
        slicer.util.updateVolumeFromArray(flat, np.zeros((1, 8, 8), np.float32))
        with self.assertRaisesRegex(ValueError, "inputVolume"):
            logic.run(flat, model="unet-btcv-3mm")
        with self.assertRaisesRegex(ValueError, "attack"):
            logic.run(self._volume(), model="unet-btcv-3mm", attack="nope")

    def test_attack_adds_results(self) -> None:
        self._message("PGD on a synthetic CT with a tiny UNet")
        volume = self._volume()
        before = np.array(slicer.util.arrayFromVolume(volume))
        logic = SpectrumAttackLogic()
        result = logic.run(volume, model=self._tinyModel(), attack="pgd",
                           params={"steps": 2, "eps": 8, "alpha": 0.01}, showResult=False)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), before)
        for node in (result.adversarialVolume, result.perturbationVolume):
            self.assertEqual(node.GetImageData().GetDimensions(), volume.GetImageData().GetDimensions())
        perturbation = slicer.util.arrayFromVolume(result.perturbationVolume)
        entry = get_entry(_catalogueNames()[0])
        bound = 8 / 255 * (entry.preprocessing.a_max - entry.preprocessing.a_min)
        self.assertLessEqual(float(np.abs(perturbation).max()), bound * 1.001)
        segmentation = result.cleanSegmentation.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), entry.num_classes - 1)
        self.assertEqual(segmentation.GetNthSegment(0).GetName(), entry.classes[1].name)
        self.assertGreater(result.metricsTable.GetNumberOfRows(), entry.num_classes)

        from SpectrumAttackAdapter.layout import show_side_by_side

        self.assertEqual(show_side_by_side(volume, result), APPLICATION)
        if APPLICATION:
            yellow = slicer.app.layoutManager().sliceWidget("Yellow").mrmlSliceCompositeNode()
            self.assertEqual(yellow.GetBackgroundVolumeID(), result.adversarialVolume.GetID())
        self._message("Test passed")

    def test_background_run_and_cancel(self) -> None:
        """The Widget's path: the CLI module in the background, then a cancelled run (application only)."""
        if getattr(getattr(slicer, "modules", None), "spectrumattackcli", None) is None:
            self._message("No SpectrumAttackCLI module (not the application): background run skipped")
            return
        import tempfile
        import time

        from SpectrumAttackLib.models import build_model, save_checkpoint

        self._message("FGSM in the background through the CLI module")
        checkpoint = Path(tempfile.mkdtemp(prefix="SpectrumAttackTest-")) / "unet.pt"
        save_checkpoint(checkpoint, build_model("unet", 3))
        volume = self._volume()
        logic = SpectrumAttackLogic()

        def runAndWait(cancel: bool) -> tuple[Any, Any]:
            finished: list[tuple[Any, Any]] = []
            job = logic.run(volume, model=str(checkpoint), attack="fgsm", params={"eps": 4}, architecture="unet",
                            numClasses=3, wait=False, onFinished=lambda r, e: finished.append((r, e)),
                            showResult=False)
            if cancel:
                job.cancel()
            deadline = time.monotonic() + 600
            while not finished and time.monotonic() < deadline:
                slicer.app.processEvents()
                time.sleep(0.05)
            self.assertTrue(finished, "the background run did not finish in 10 minutes")
            return finished[0]

        result, error = runAndWait(cancel=False)
        self.assertIsNone(error)
        self.assertEqual(result.cleanSegmentation.GetSegmentation().GetNumberOfSegments(), 2)
        self.assertEqual(result.adversarialVolume.GetImageData().GetDimensions(),
                         volume.GetImageData().GetDimensions())
        before = slicer.mrmlScene.GetNumberOfNodes()
        result, error = runAndWait(cancel=True)
        self.assertEqual((result, error), (None, "cancelled"))
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
        self._message("Test passed")
