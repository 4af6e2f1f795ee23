"""One small forward pass before any attack: the model must take the ROI and give one channel per class.

A TorchScript file or bundle whose metadata states another class count than the network outputs would otherwise
run to completion with per-class metrics silently wrong (5 outputs read as 14 classes), or fail only after the
attack (14 outputs, 5 classes stated).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from SpectrumAttackLib.attacks.base import logits_of, model_device

__all__ = ["probe_model"]


def probe_model(model: nn.Module, num_classes: int, roi: Sequence[int], *, name: str = "model") -> None:
    """Run ``model`` once on a zero ``[1, 1, *roi]`` input and check its output.

    Args:
        model: the network in eval mode, images ``[B, 1, H, W, D]`` → logits ``[B, C, H, W, D]``.
        num_classes: the class count stated by the catalogue, the file's metadata or ``--out_channels``.
        roi: the model's window ``(H, W, D)`` (its preprocessing's ROI).
        name: the parameter named in the message.

    Raises:
        ValueError: the forward fails, or the output is not ``[1, num_classes, *roi]``.
    """
    roi = tuple(int(v) for v in roi)
    device = model_device(model)
    try:
        with torch.inference_mode():
            output = logits_of(model(torch.zeros((1, 1, *roi), device=device)))
    except Exception as exc:  # a user's network can raise anything on a wrong input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name} must accept a [1, 1, {', '.join(map(str, roi))}] image (its ROI), got an error "
                         f"from a probe forward: {first}") from None
    shape = tuple(getattr(output, "shape", ()))
    if len(shape) != 5 or shape[1] != num_classes:
        channels = shape[1] if len(shape) > 1 else "no channel axis"
        raise ValueError(f"{name} must output {num_classes} channels (the class count its metadata or "
                         f"--out_channels/numClasses states), got {channels} (output shape {list(shape)} from a "
                         "probe forward).")
    if shape[2:] != roi:
        raise ValueError(f"{name} must output the input's spatial size {list(roi)}, got {list(shape[2:])} from a "
                         "probe forward.")
