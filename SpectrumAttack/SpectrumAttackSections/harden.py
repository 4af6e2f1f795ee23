"""The Harden section (``HardenSection.ui``): training (and validation) pairs from the scene, the model, the
training mode, the attack making the adversarial examples (its parameters are the Attack section's), iterations;
Apply fine-tunes through the robustness CLI module, then adds the hardened model to every model list and shows the
before/after table and chart."""

from __future__ import annotations

from typing import Any

import slicer
from slicer.i18n import tr as _

from SpectrumAttackSections.section import Section, fillModelList, formatValue

__all__ = ["HardenSection"]


class HardenSection(Section):
    TITLE = _("Harden")
    UI_FILE = "HardenSection.ui"
    COLLAPSED = True

    def setup(self) -> None:
        self.ui.hardenModelSelector.connect("currentIndexChanged(int)", self.onModelSelected)
        self.ui.addPairButton.connect("clicked()", self.onAddPair)
        self.ui.removePairButton.connect("clicked()", self.onRemovePair)

    def enter(self) -> None:
        if self.parameterNode is not None:
            fillModelList(self.ui.hardenModelSelector, self.logic.modelChoices()[:-1], self.parameterNode.hardenModel)
        super().enter()

    def onModelSelected(self, index: int) -> None:
        if self.parameterNode is not None and index >= 0:
            self.parameterNode.hardenModel = self.ui.hardenModelSelector.currentText

    def onAddPair(self) -> None:
        p = self.parameterNode
        volume, labels = self.ui.pairVolumeSelector.currentNode(), self.ui.pairSegmentationSelector.currentNode()
        if p is None or volume is None or labels is None:
            return
        p.hardenVolumes = [*p.hardenVolumes, volume]
        p.hardenSegmentations = [*p.hardenSegmentations, labels]
        p.hardenValidation = [*p.hardenValidation, bool(self.ui.pairValidationCheckBox.checked)]

    def onRemovePair(self) -> None:
        p, row = self.parameterNode, self.ui.pairsList.currentRow
        if p is None or row < 0:
            return
        for name in ("hardenVolumes", "hardenSegmentations", "hardenValidation"):
            values = list(getattr(p, name))
            del values[row]
            setattr(p, name, values)

    def pairs(self, validation: bool) -> list[tuple[Any, Any]]:
        p = self.parameterNode
        return [(v, s) for v, s, val in zip(p.hardenVolumes, p.hardenSegmentations, p.hardenValidation, strict=False)
                if bool(val) == validation and v is not None and s is not None]

    def update(self, p: Any) -> None:
        if self.ui.hardenModelSelector.currentText != p.hardenModel or self.ui.hardenModelSelector.count == 0:
            fillModelList(self.ui.hardenModelSelector, self.logic.modelChoices()[:-1], p.hardenModel)
        self.ui.pairsList.clear()
        for volume, labels, validation in zip(p.hardenVolumes, p.hardenSegmentations, p.hardenValidation,
                                              strict=False):
            if volume is not None and labels is not None:
                role = _("validation") if validation else _("training")
                self.ui.pairsList.addItem(f"{volume.GetName()} + {labels.GetName()} ({role})")
        reason = "" if self.pairs(False) else _("Add at least one training pair (volume + segmentation).")
        self.setApplyState(reason, _("Fine-tune the model in the background."))

    def start(self, onProgress: Any, onFinished: Any) -> Any:
        p = self.parameterNode
        used = self.logic.attackParameterNames(p.hardenAttack)
        params = {name: getattr(p, name) for name in used}  # the Attack section's values of this attack's rows
        preset = str(p.auditGridFile) if p.auditPreset == "grid file" else p.auditPreset
        output = None if str(p.hardenOutput) in ("", ".") else str(p.hardenOutput)
        return self.logic.harden(self.pairs(False), model=p.hardenModel, mode=p.hardenMode, attack=p.hardenAttack,
                                 params=params, iterations=p.hardenIterations,
                                 validationData=self.pairs(True) or None, output=output, device=p.device,
                                 precision=p.precision, seed=p.seed, wait=False, onProgress=onProgress,
                                 onFinished=onFinished, auditPreset=preset)

    def finished(self, outcome: Any, error: str | None) -> str:
        for section in self.widget.sections:
            section.enter()  # the hardened model is in every model list at once
        slicer.modules.plots.logic().ShowChartInLayout(outcome.chart)
        before, after = outcome.comparison["rows"]
        return _("Hardened model {name}. Dice at SSIM ≥ 0.95: {a} → {b}; clean: {c} → {d}.").format(
            name=outcome.modelName, a=formatValue(before["robust_dice"].get("0.95")),
            b=formatValue(after["robust_dice"].get("0.95")), c=formatValue(before["clean_dice"]),
            d=formatValue(after["clean_dice"]))
