"""Fixtures of the model tests: a temporary resources folder with a catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A resources folder (``SPECTRUMATTACK_RESOURCES``) and a function that writes its catalogue."""
    folder = tmp_path / "resources"
    (folder / "weights").mkdir(parents=True)
    monkeypatch.setenv("SPECTRUMATTACK_RESOURCES", str(folder))

    def write(*entries: dict) -> Path:
        path = folder / "models.json"
        path.write_text(json.dumps({"version": 1, "models": list(entries)}))
        return path

    return folder, write
