"""Sliding-window inference over whole volumes, without gradients (evaluation) and with them (attacks).

Evaluation in the reference (seed-algorithms §10 step 4) runs MONAI's ``sliding_window_inference`` with 96³ windows
and 50 % overlap. :func:`predict_logits` does exactly that; :class:`SlidingWindowModel` makes the same windowed,
blended prediction a differentiable ``forward`` so an attack can optimise what evaluation sees (§13 item 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.networks.utils import eval_mode
from torch import nn

from SpectrumAttackLib.attacks.base import forward_logits, logits_of, model_device
from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.precision import Precision, resolve_precision

__all__ = ["BLEND_MODES", "SlidingWindowModel", "check_roi", "predict_logits", "window_count"]

#: how overlapping windows are blended (MONAI's ``mode``).
BLEND_MODES = ("constant", "gaussian")


def check_roi(roi: Any) -> tuple[int, int, int]:
    """Return the window size as three ints ≥ 1 (an int is broadcast to the three axes).

    Raises:
        TypeError: ``roi`` is not an int or a sequence.
        ValueError: not three entries, or an entry below 1.
    """
    if isinstance(roi, int) and not isinstance(roi, bool):
        roi = (roi,) * 3
    if not isinstance(roi, Sequence) or isinstance(roi, str):
        raise TypeError(f"roi must be a sequence of 3 integers (H, W, D), got {roi!r}.")
    if len(roi) != 3 or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in roi):
        raise ValueError(f"roi must be 3 integers >= 1 (H, W, D) in voxels, got {tuple(roi)!r}.")
    return tuple(int(r) for r in roi)  # type: ignore[return-value]


def check_images(images: Any) -> torch.Tensor:
    """Raise ``ValueError`` unless ``images`` is a 5-D float tensor ``[B, C, H, W, D]``."""
    if not isinstance(images, torch.Tensor) or images.dim() != 5 or not images.is_floating_point():
        got = f"shape {list(images.shape)} dtype {images.dtype}" if isinstance(images, torch.Tensor) \
            else type(images).__name__
        raise ValueError(f"images must be a 5-D float tensor [B, C, H, W, D], got {got}.")
    return images


def window_count(shape: Sequence[int], roi: Sequence[int], overlap: float) -> int:
    """Number of windows MONAI's sliding window places on a ``shape`` volume (padded up to ``roi`` first).

    Same rule as ``monai.inferers.utils._get_scan_interval``: the stride is ``int(roi·(1 − overlap))`` (at least 1),
    or ``roi`` along an axis that the window covers exactly.
    """
    count = 1
    for size, window in zip(shape, roi, strict=True):
        size = max(int(size), int(window))
        stride = window if window == size else max(int(window * (1 - overlap)), 1)
        starts = 1
        while (starts - 1) * stride + window < size:
            starts += 1
        count *= starts
    return count


def _check_window_args(overlap: float, sw_batch_size: int, mode: str) -> tuple[float, int, str]:
    overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
    sw_batch_size = check_int("sw_batch_size", sw_batch_size, 1)
    mode = check_choice("mode", mode, BLEND_MODES)
    return overlap, sw_batch_size, mode


def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    roi: Sequence[int] | int,
    overlap: float = 0.5,
    sw_batch_size: int = 1,
    mode: str = "constant",
    precision: str | Precision = "auto",
) -> torch.Tensor:
    """Whole-volume logits by sliding-window inference, without gradients.

    The model runs in eval mode on its own device; each module's training flag is restored afterwards. Volumes
    smaller than ``roi`` along an axis are zero-padded for the windows and the output is cropped back (MONAI).

    Args:
        model: segmentation network ``[N, C, *roi] → logits [N, K, *roi]`` (a list output takes its first entry).
        images: ``[B, C, H, W, D]`` float, model-grid intensities (in [0, 1] after the window).
        roi: window size ``(h, w, d)`` in voxels (an int for a cube), e.g. 96.
        overlap: fraction of the window shared by neighbours, ``0 <= overlap < 1``. Default 0.5 (the seed's
            ``--infer_overlap``).
        sw_batch_size: windows per forward pass, ≥ 1. Default 1.
        mode: blending of overlapping windows, ``"constant"`` (plain mean, the seed's) or ``"gaussian"``.
        precision: of the model passes, ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"`` or a resolved
            :class:`~SpectrumAttackLib.precision.Precision` (see :mod:`SpectrumAttackLib.precision`); the windows'
            logits are blended in float32. Default "auto".

    Returns:
        logits ``[B, K, H, W, D]`` float32 on the device of ``images``.

    Raises:
        ValueError: bad ``images``, ``roi``, ``overlap``, ``sw_batch_size``, ``mode`` or ``precision``.

    Example:
        >>> logits = predict_logits(model, images, roi=(96, 96, 96), overlap=0.5)
        >>> seg = logits.argmax(1, keepdim=True)
    """
    check_images(images)
    roi = check_roi(roi)
    overlap, sw_batch_size, mode = _check_window_args(overlap, sw_batch_size, mode)
    device = model_device(model)
    precision = resolve_precision(precision, device)
    with eval_mode(model):
        if tuple(images.shape[2:]) == roi and images.shape[0] <= sw_batch_size:
            # one window covering the volume: MONAI's blend (weight 1, count 1) returns these logits unchanged;
            # its output and count buffers and the window copy would be the only difference
            return forward_logits(model, images.to(device), precision).to(images.device)
        return sliding_window_inference(
            images, roi, sw_batch_size, lambda x: forward_logits(model, x, precision), overlap=overlap, mode=mode,
            sw_device=device, device=images.device,
        )


class SlidingWindowModel(nn.Module):
    """A model whose ``forward`` is sliding-window inference, differentiable with respect to the input.

    Attacking ``SlidingWindowModel(model, roi, overlap)`` optimises the blended prediction that evaluation computes
    with the same windows, instead of tile-aligned windows that evaluation never uses (seed-algorithms §13
    item 11). The wrapped model is a submodule, so an attack's eval/freeze handling reaches it, and so does its
    precision: under an attack's autocast only the wrapped model's layers run in bf16/fp16, each window's logits
    are cast back to float32 before MONAI blends them.

    Args:
        model: segmentation network ``[N, C, *roi] → logits [N, K, *roi]``.
        roi, overlap, sw_batch_size, mode: as in :func:`predict_logits`.

    Shape:
        ``[B, C, H, W, D] → [B, K, H, W, D]`` for any ``H, W, D`` (smaller than ``roi`` is padded and cropped).

    Example:
        >>> wrapped = SlidingWindowModel(model, roi=(96, 96, 96), overlap=0.5)
        >>> result = attacks.create("pgd", wrapped, eps=4)(images, labels)
    """

    def __init__(self, model: nn.Module, roi: Sequence[int] | int, overlap: float = 0.5, sw_batch_size: int = 1,
                 mode: str = "constant") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        self.model = model
        self.roi = check_roi(roi)
        self.overlap, self.sw_batch_size, self.mode = _check_window_args(overlap, sw_batch_size, mode)

    def _window(self, x: torch.Tensor) -> torch.Tensor:
        # MONAI scales each window's output in place; a copy keeps the model's own output (which some final
        # activations save for their backward pass) untouched. The copy is float32 whatever autocast produced.
        return logits_of(self.model(x)).to(torch.float32, copy=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        return sliding_window_inference(
            images, self.roi, self.sw_batch_size, self._window, overlap=self.overlap, mode=self.mode,
        )

    def extra_repr(self) -> str:
        return f"roi={self.roi}, overlap={self.overlap}, sw_batch_size={self.sw_batch_size}, mode={self.mode!r}"
