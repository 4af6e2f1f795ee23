"""What every section shares: its ``.ui`` file in a collapsible button, the model list, and a background job with
Apply turning into Cancel, progress and a status line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ctk
import qt
import slicer
from slicer.i18n import tr as _

__all__ = ["Section", "fillModelList", "formatValue"]

_UI_FOLDER = Path(__file__).resolve().parent.parent / "Resources" / "UI"


def formatValue(value: Any) -> str:
    """A Dice-like value for a status line ("n/a" when undefined)."""
    return "n/a" if value is None or (isinstance(value, float) and value != value) else f"{value:.3f}"


def fillModelList(comboBox: Any, names: list[str], current: str) -> None:
    """Show ``names`` (plus ``current`` when it is no longer among them) with ``current`` selected, silently."""
    wasBlocked = comboBox.blockSignals(True)
    comboBox.clear()
    comboBox.addItems(names if current in names else [*names, current])
    comboBox.currentText = current
    comboBox.blockSignals(wasBlocked)


class Section:
    """One collapsible section of the panel.

    Subclasses set ``TITLE``, ``UI_FILE`` and ``COLLAPSED`` and implement :meth:`update` (parameter node changed)
    and :meth:`start` (Apply: start the job with callbacks; return it).
    """

    TITLE = ""
    UI_FILE = ""
    COLLAPSED = False

    def __init__(self, widget: Any) -> None:
        self.widget, self.logic = widget, widget.logic
        self.button = ctk.ctkCollapsibleButton()
        self.button.text = self.TITLE
        self.button.collapsed = self.COLLAPSED
        self.uiWidget = slicer.util.loadUI(str(_UI_FOLDER / self.UI_FILE))
        qt.QVBoxLayout(self.button).addWidget(self.uiWidget)
        self.ui = slicer.util.childWidgetVariables(self.uiWidget)
        self.uiWidget.setMRMLScene(slicer.mrmlScene)
        self.parameterNode: Any = None
        self.job: Any = None
        self.ui.progressBar.visible = False
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.setup()

    # ------------------------------------------------------------------ for subclasses
    def setup(self) -> None:
        """Connect the section's own widgets."""

    def update(self, parameterNode: Any) -> None:
        """The parameter node changed: show what applies, enable Apply."""

    def start(self, onProgress: Any, onFinished: Any) -> Any:
        """Start the section's job; returns it."""
        raise NotImplementedError

    def finished(self, result: Any, error: str | None) -> str:
        """Show a finished job's result; returns the status line."""
        return ""

    def enter(self) -> None:
        """The module is shown again: refresh lists."""
        if self.parameterNode is not None:
            self.update(self.parameterNode)

    # ------------------------------------------------------------------ shared behaviour
    def initialize(self, parameterNode: Any) -> None:
        self.parameterNode = parameterNode

    def setApplyState(self, reason: str, tip: str) -> None:
        """Enable Apply unless there is a ``reason`` not to (shown as its tooltip); not while a job runs."""
        if self.job is None:
            self.ui.applyButton.enabled = not reason
            self.ui.applyButton.toolTip = reason or tip

    def stop(self) -> None:
        """Cancel the running job for good (scene close, cleanup): its late report changes nothing."""
        if self.job is None:
            return
        job, self.job = self.job, None
        job.cancel()
        self._idle(_("Cancelled; nothing was added."))

    def _idle(self, status: str) -> None:
        self.ui.applyButton.text = _("Apply")
        self.ui.progressBar.visible = False
        self.ui.statusLabel.text = status

    def onApply(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.ui.applyButton.enabled = False
            self.ui.statusLabel.text = _("Cancelling...")
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start."), waitCursor=True):
            started: list[Any] = []

            def current() -> bool:  # a job stopped by stop() reports to nobody
                return bool(started) and started[0] is self.job

            def progress(report: Any) -> None:
                if current():
                    self.showProgress(report)

            def done(result: Any, error: str | None) -> None:
                if current():
                    self.job = None
                    self.onFinished(result, error)

            self.job = self.start(progress, done)
            started.append(self.job)
            self.ui.applyButton.text = _("Cancel")
            self.ui.progressBar.value = 0
            self.ui.progressBar.visible = True
            self.ui.statusLabel.text = _("Starting...")

    def showProgress(self, progress: Any) -> None:
        self.ui.progressBar.value = round(100 * progress.fraction)
        text = f"{progress.stage} {progress.done}/{progress.total}" if progress.total else _("starting")
        if progress.message:
            text += f", {progress.message}"
        eta = progress.eta_seconds
        self.ui.statusLabel.text = text + ("" if eta is None else f", ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def onFinished(self, result: Any, error: str | None) -> None:
        if result is not None:
            self._idle(self.finished(result, error))
        elif error == "cancelled":
            self._idle(_("Cancelled; nothing was added."))
        else:
            self._idle(_("Failed."))
            lines = [line for line in (error or "").splitlines() if line.strip()]
            cause = lines[-1] if lines else _("unknown error")  # the CLI's one-line error comes last
            slicer.util.errorDisplay(_("{title} failed: {cause}").format(title=self.TITLE, cause=cause),
                                     detailedText=error or "")
        if self.parameterNode is not None:
            self.update(self.parameterNode)
