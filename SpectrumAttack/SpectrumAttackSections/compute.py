"""The Compute section of the module panel (application only): run on this computer or on a SpectrumAttack
server, the server URL, the token and "Test connection".

The choice and the URL are written to the module's parameter node (``SpectrumAttackAdapter.compute``); the token
goes to Slicer's settings (``SpectrumAttack/serverToken``), never to the scene.
"""

from __future__ import annotations

from typing import Any

import qt
import slicer
from SpectrumAttackAdapter import compute

__all__ = ["ComputeSection"]

#: combo-box entry → backend.
_CHOICES = {"this computer": "local", "server": "server"}


class ComputeSection:
    """Build the section from :data:`UI_FILE` into ``layout`` and keep it in step with the parameter node (not a
    ``Section``: no Apply, no job of its own; it only says where the other sections' jobs run).

    Args:
        layout: the module panel's layout.
        ui_file: path of ``Resources/UI/ComputeSection.ui``.
    """

    UI_FILE = "ComputeSection.ui"

    def __init__(self, layout: Any, ui_file: str) -> None:
        widget = slicer.util.loadUI(ui_file)
        layout.addWidget(widget)
        self.ui = slicer.util.childWidgetVariables(widget)
        self._node: Any = None
        self.ui.serverTokenEdit.text = compute.server_token()
        self.ui.computeBackendSelector.connect("currentIndexChanged(int)", lambda _: self._store())
        self.ui.serverUrlEdit.connect("editingFinished()", self._store)
        self.ui.serverTokenEdit.connect("editingFinished()",
                                        lambda: compute.set_server_token(self.ui.serverTokenEdit.text))
        self.ui.testConnectionButton.connect("clicked(bool)", lambda _: self.testConnection())
        self._showServerFields()

    def setParameterNode(self, parameterNode: Any) -> None:
        """Show the choice stored on ``parameterNode`` (None: between scenes)."""
        self._node = parameterNode
        if parameterNode is None:
            return
        try:
            chosen = compute.backend(parameterNode)
        except ValueError as error:  # a saved scene with a bad URL: shown, and kept until corrected
            chosen = compute.Backend("server", compute.raw_node(parameterNode).GetParameter(compute.URL_PARAMETER))
            self.ui.connectionStatusLabel.text = str(error)
        blocked = [w.blockSignals(True) for w in (self.ui.computeBackendSelector, self.ui.serverUrlEdit)]
        self.ui.computeBackendSelector.currentIndex = list(_CHOICES.values()).index(chosen.kind)
        self.ui.serverUrlEdit.text = chosen.url
        for widget, was in zip((self.ui.computeBackendSelector, self.ui.serverUrlEdit), blocked, strict=True):
            widget.blockSignals(was)
        self._showServerFields()

    def _kind(self) -> str:
        return _CHOICES[self.ui.computeBackendSelector.currentText]

    def _showServerFields(self) -> None:
        server = self._kind() == "server"
        for name in ("serverUrlLabel", "serverUrlEdit", "serverTokenLabel", "serverTokenEdit", "testConnectionButton",
                     "connectionStatusLabel"):
            getattr(self.ui, name).visible = server

    def _store(self) -> None:
        self._showServerFields()
        if self._node is None:
            return
        kind, url = self._kind(), self.ui.serverUrlEdit.text.strip()
        try:
            compute.set_backend(self._node, kind, url if kind == "server" else url or "")
            self.ui.connectionStatusLabel.text = ""
        except ValueError as error:  # stored anyway; Apply reports it until the URL is corrected
            self.ui.connectionStatusLabel.text = str(error)

    def testConnection(self) -> None:
        """Ask the server for its capabilities with the URL and token shown; the answer or the error, one line."""
        compute.set_server_token(self.ui.serverTokenEdit.text)
        with slicer.util.WaitCursor():
            try:
                compute.ensure_client_dependencies()
                text = compute.test_connection(self.ui.serverUrlEdit.text, self.ui.serverTokenEdit.text)
            except Exception as error:  # every failure is a message for the user here, in its own words
                text = f"{type(error).__name__}: {error}"
        self.ui.connectionStatusLabel.text = text
        qt.QApplication.processEvents()
