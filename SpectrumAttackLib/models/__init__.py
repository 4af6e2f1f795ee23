"""Segmentation models: MONAI UNet / UNETR / Swin-UNETR, checkpoints, users' models and the catalogue.

Public names are resolved lazily, so ``from SpectrumAttackLib.models import catalogue`` (or
``models.catalogue.load_catalogue()``) works without torch; everything else imports torch and MONAI on first use::

    from SpectrumAttackLib.models import load_model
    loaded = load_model("unet-btcv-3mm", "cpu")   # LoadedModel(model, entry, report)
"""

from __future__ import annotations

from SpectrumAttackLib.lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _WHERE)


def __dir__() -> list[str]:
    return sorted(__all__)
