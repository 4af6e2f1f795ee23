"""Segmentation models: MONAI UNet / UNETR / Swin-UNETR, checkpoints, users' models and the catalogue.

Public names are resolved lazily, so ``from SpectrumAttackLib.models import catalogue`` (or
``models.catalogue.load_catalogue()``) works without torch; everything else imports torch and MONAI on first use::

    from SpectrumAttackLib.models import load_model
    loaded = load_model("unet-btcv-3mm", "cpu")   # LoadedModel(model, entry, report)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "LoadReport",
    "LoadedModel",
    "ModelEntry",
    "Preprocessing",
    "build_model",
    "get_entry",
    "load_catalogue",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

_WHERE = {
    "ARCHITECTURES": "catalogue",
    "ModelEntry": "catalogue",
    "Preprocessing": "catalogue",
    "get_entry": "catalogue",
    "load_catalogue": "catalogue",
    "build_model": "factory",
    "LoadReport": "checkpoints",
    "load_checkpoint": "checkpoints",
    "save_checkpoint": "checkpoints",
    "LoadedModel": "loading",
    "load_model": "loading",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
