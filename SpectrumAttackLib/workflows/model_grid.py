"""The model side of a single-volume workflow: the loaded network, its catalogue entry as the workflow reads it, and
the model-grid strategy that maps a volume to the model grid, predicts there and maps results back.

MONAI models use :class:`MonaiModelGrid` (the geometry of :mod:`~SpectrumAttackLib.inference.geometry` and MONAI's
sliding window); nnU-Net models use :class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference` (nnU-Net's own
preprocessing, sliding window and export) behind the same methods.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.inference.sliding import check_roi, predict_logits
from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
from SpectrumAttackLib.pipeline.case import GeometryGrid
from SpectrumAttackLib.precision import Precision
from SpectrumAttackLib.runtime import resolve_device

__all__ = ["MonaiModelGrid", "entry_field", "label_dtype", "model_classes", "model_grid", "model_preprocessing",
           "resolve_model"]

_PREPROCESSING_KEYS = ("orientation", "spacing_mm", "a_min", "a_max", "b_min", "b_max", "roi")


def entry_field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise (catalogue entries may be either)."""
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


def resolve_model(model: Any, device: str | torch.device) -> tuple[torch.nn.Module, Any]:
    """``(network, entry)``: a name or path is loaded with :func:`SpectrumAttackLib.models.load_model` on ``device``;
    a ``LoadedModel`` is used as is.

    Raises:
        TypeError: ``model`` is none of these.
    """
    if isinstance(model, (str, os.PathLike)):
        from SpectrumAttackLib.models import load_model  # torch-heavy, imported on use

        model = load_model(model, resolve_device(device))
    if not hasattr(model, "model") or not hasattr(model, "entry") or not isinstance(model.model, torch.nn.Module):
        raise TypeError(f"model must be a model name, a path or a LoadedModel, got {type(model).__name__}.")
    return model.model, model.entry


def model_preprocessing(entry: Any) -> dict[str, Any]:
    """The entry's preprocessing as a dict (orientation, spacing in mm, intensity window, checked roi).

    Raises:
        ValueError: a setting is missing.
    """
    settings = entry_field(entry, "preprocessing")
    missing = [k for k in _PREPROCESSING_KEYS if not (k in settings if isinstance(settings, Mapping)
                                                      else hasattr(settings, k))]
    if missing:
        raise ValueError(f"model preprocessing must define {', '.join(_PREPROCESSING_KEYS)}, "
                         f"got one without {', '.join(missing)}.")
    out = {k: entry_field(settings, k) for k in _PREPROCESSING_KEYS}
    out["roi"] = check_roi(tuple(out["roi"]) if not isinstance(out["roi"], int) else out["roi"])
    return out


def model_classes(entry: Any) -> list[dict[str, Any]]:
    """``[{"id", "name", "rgb"}, ...]`` of the entry, background first."""
    return [{"id": int(entry_field(c, "id")), "name": str(entry_field(c, "name")), "rgb": list(entry_field(c, "rgb"))}
            for c in entry_field(entry, "classes")]


def label_dtype(num_classes: int) -> type:
    """The integer type of a segmentation written for ``num_classes`` classes: uint8, or int16 beyond 256."""
    return np.uint8 if num_classes <= 256 else np.int16


class MonaiModelGrid(GeometryGrid):
    """The geometry mapping of one preprocessing plus MONAI's sliding-window prediction, behind the same methods as
    :class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference`."""

    def __init__(self, net: torch.nn.Module, prep: dict[str, Any], overlap: float, precision: Precision) -> None:
        super().__init__(**{k: prep[k] for k in ("spacing_mm", "a_min", "a_max", "b_min", "b_max", "orientation")})
        self.net, self.roi, self.overlap, self.precision = net, prep["roi"], overlap, precision
        self.window = None  # sliding-window attacks wrap the net in MONAI's windows

    def use(self, mapping: Any) -> None:
        """Nothing to set: the window is the model's."""

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[1, K, H, W, D]`` logits of ``images`` ``[1, 1, H, W, D]`` (sliding window)."""
        return predict_logits(self.net, images, self.roi, self.overlap, precision=self.precision)

    def segmentation(self, logits: torch.Tensor, mapping: Any) -> np.ndarray:
        """The argmax of ``logits`` on the input grid of ``mapping`` (nearest neighbour), in the smallest label
        type (:func:`label_dtype`: uint8 up to 256 classes), cast in the model grid so that the input-grid map is
        never held as int64 (400 MB for a 512×512×200 CT, twice with the reorientation's copy)."""
        classes = class_map(logits)[0, 0].cpu().numpy().astype(label_dtype(logits.shape[1]))
        return self.from_model_grid(classes, mapping, mode="nearest")


def model_grid(net: torch.nn.Module, entry: Any, prep: dict[str, Any], overlap: float, precision: Precision) -> Any:
    """The model-grid strategy of ``entry``: nnU-Net's own inference for nnU-Net models, else
    :class:`MonaiModelGrid`."""
    settings = entry_field(entry, "preprocessing")
    if isinstance(settings, NnUNetPreprocessing):
        from SpectrumAttackLib.inference.nnunet import NnUNetInference  # needs the nnunet extra

        return NnUNetInference(net, settings, overlap)
    return MonaiModelGrid(net, prep, overlap, precision)
