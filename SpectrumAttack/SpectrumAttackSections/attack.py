"""The Attack section (``SpectrumAttack.ui``): input, model, attack parameters (the table's rows), Apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qt
import slicer
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import findChildWidgetForParameter
from SpectrumAttackAdapter.model_list import USER_MODEL

from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS
from SpectrumAttackSections.section import Section, fillModelList, formatValue

__all__ = ["AttackSection"]


class AttackSection(Section):
    TITLE = _("Attack")
    UI_FILE = "SpectrumAttack.ui"

    def setup(self) -> None:
        #: The widget bound to each table row (its ``SlicerParameterName``); its label is ``<name>Label``.
        self.parameterWidgets = {row.slicer: findChildWidgetForParameter(self.uiWidget, row.slicer)
                                 for row in SLICER_PARAMETERS}
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelSelected)
        # ctkPathLineEdit's Browse opens a file dialog whenever Files is among its filters: folders (MONAI
        # bundles, nnU-Net models) get their own button.
        self.ui.modelFolderButton.connect("clicked()", self.onModelFolder)
        self.ui.deviceInfoLabel.text = self.logic.deviceSummary()

    def initialize(self, parameterNode: Any) -> None:
        super().initialize(parameterNode)
        if parameterNode is not None and not parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and not first.IsA("vtkMRMLLabelMapVolumeNode") and not first.GetHideFromEditors():
                parameterNode.inputVolume = first

    def enter(self) -> None:
        self.ui.deviceInfoLabel.text = self.logic.deviceSummary()  # torch may have been installed meanwhile
        if self.parameterNode is not None:
            fillModelList(self.ui.modelSelector, self.logic.modelChoices(), self.parameterNode.model)
        super().enter()

    def onModelSelected(self, index: int) -> None:
        if self.parameterNode is not None and index >= 0:
            self.parameterNode.model = self.ui.modelSelector.currentText

    def onModelFolder(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(self.uiWidget, _("Model folder (MONAI bundle or nnU-Net)"))
        if folder and self.parameterNode is not None:
            self.parameterNode.modelPath = Path(folder)

    def update(self, p: Any) -> None:
        if self.ui.modelSelector.currentText != p.model or self.ui.modelSelector.count == 0:
            fillModelList(self.ui.modelSelector, self.logic.modelChoices(), p.model)
        self.ui.userModelWidget.visible = p.model == USER_MODEL
        self.ui.modelDescriptionLabel.text = self.logic.modelDescription(p.model)
        used = self.logic.attackParameterNames(p.attack)
        for row in SLICER_PARAMETERS:
            if row.attacks is not None:  # attack parameters: only the chosen attack's rows are shown
                self.parameterWidgets[row.slicer].visible = row.slicer in used
                getattr(self.ui, f"{row.slicer}Label").visible = row.slicer in used
        self.setApplyState(self.logic.validationError(p), _("Run the attack in the background."))

    def start(self, onProgress: Any, onFinished: Any) -> Any:
        try:
            return self.logic.runFromParameterNode(self.parameterNode, onProgress=onProgress, onFinished=onFinished)
        finally:  # the dependency step may have installed PyTorch
            self.ui.deviceInfoLabel.text = self.logic.deviceSummary()

    def finished(self, result: Any, error: str | None) -> str:
        clean, adversarial = (result.metrics.get(k, {}).get("dice") for k in ("clean", "adversarial"))
        return _("Done in {seconds:.1f} s. Mean Dice {clean} → {adversarial}.").format(
            seconds=result.seconds, clean=formatValue(clean), adversarial=formatValue(adversarial))
