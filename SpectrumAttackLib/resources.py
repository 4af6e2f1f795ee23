"""Where the extension's assets (model catalogue, bundled weights) live."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resource_dir"]

ENV_VAR = "SPECTRUMATTACK_RESOURCES"


def resource_dir() -> Path:
    """Return the folder holding ``models.json`` and the bundled weights.

    Tried in order: the ``SPECTRUMATTACK_RESOURCES`` environment variable; ``<package>/Resources``
    (layout installed by Slicer's CMake); ``<package>/../Resources`` (source tree, editable installs).

    Raises:
        FileNotFoundError: none of the candidates holds ``models.json``.
    """
    package = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates += [package / "Resources", package.parent / "Resources"]
    for folder in candidates:
        if (folder / "models.json").is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"models.json not found; looked in {tried}. Set {ENV_VAR} to the folder.")
