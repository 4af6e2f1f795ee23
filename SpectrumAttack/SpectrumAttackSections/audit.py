"""The Audit section (``AuditSection.ui``): volume, reference, models to compare, grid, precision; Apply runs the
audit through the robustness CLI module; the results are a table, two plot charts and the HTML report."""

from __future__ import annotations

from typing import Any

import qt
import slicer
from slicer.i18n import tr as _

from SpectrumAttackSections.section import Section, formatValue

__all__ = ["AuditSection"]


class AuditSection(Section):
    TITLE = _("Audit")
    UI_FILE = "AuditSection.ui"
    COLLAPSED = True

    def setup(self) -> None:
        self.reportFolder: str | None = None
        self.ui.auditModelsList.connect("itemChanged(QListWidgetItem*)", self.onModelChecked)
        self.ui.openReportButton.connect("clicked()", self.onOpenReport)
        self.ui.openReportButton.enabled = False

    def enter(self) -> None:
        self.showModels()
        super().enter()

    def showModels(self) -> None:
        """The model list as checkable items; the checked ones are ``auditModels``."""
        p = self.parameterNode
        if p is None:
            return
        names = [n for n in self.logic.modelChoices() if n != "my model (file)"]
        checked = set(p.auditModels) or {names[0]} if names else set()
        wasBlocked = self.ui.auditModelsList.blockSignals(True)
        self.ui.auditModelsList.clear()
        for name in names:
            item = qt.QListWidgetItem(name)
            item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
            item.setCheckState(qt.Qt.Checked if name in checked else qt.Qt.Unchecked)
            self.ui.auditModelsList.addItem(item)
        self.ui.auditModelsList.blockSignals(wasBlocked)

    def onModelChecked(self, item: Any) -> None:
        if self.parameterNode is not None:
            items = [self.ui.auditModelsList.item(i) for i in range(self.ui.auditModelsList.count)]
            self.parameterNode.auditModels = [i.text() for i in items if i.checkState() == qt.Qt.Checked]

    def onOpenReport(self) -> None:
        if self.reportFolder:
            report = qt.QUrl.fromLocalFile(f"{self.reportFolder}/report.html")
            qt.QDesktopServices.openUrl(report)  # the system browser (the report holds scripts and a figure)

    def update(self, p: Any) -> None:
        if self.ui.auditModelsList.count == 0:
            self.showModels()
        self.ui.auditGridFileWidget.visible = p.auditPreset == "grid file"
        reason = ""
        if p.auditVolume is None:
            reason = _("Choose the volume to audit.")
        elif not p.auditModels:
            reason = _("Tick at least one model.")
        elif p.auditPreset == "grid file" and str(p.auditGridFile) in ("", "."):
            reason = _("Choose the grid file.")
        self.setApplyState(reason, _("Run the audit in the background."))

    def start(self, onProgress: Any, onFinished: Any) -> Any:
        p = self.parameterNode
        preset = str(p.auditGridFile) if p.auditPreset == "grid file" else p.auditPreset
        return self.logic.audit(p.auditVolume, list(p.auditModels), preset=preset,
                                referenceSegmentation=p.auditReference, device=p.device, precision=p.precision,
                                seed=p.seed, wait=False, onProgress=onProgress, onFinished=onFinished)

    def finished(self, summary: Any, error: str | None) -> str:
        self.reportFolder = summary.get("folder")
        self.ui.openReportButton.enabled = bool(self.reportFolder)
        charts = summary["nodes"]["charts"]
        if charts and getattr(slicer, "app", None) is not None:
            slicer.modules.plots.logic().ShowChartInLayout(slicer.mrmlScene.GetNodeByID(charts[0]))
        robust = ", ".join(f"{m}: {formatValue(v['robust_dice'].get('0.95'))}"
                           for m, v in summary["per_model"].items())
        return _("Done. Worst-case Dice at SSIM ≥ 0.95: {robust}.").format(robust=robust)
