"""Attacking a whole volume: tile by tile as the reference does, or through the evaluation's sliding window.

``"tiles"`` follows the reference pipeline (seed-algorithms §10): ``dense_patch_slices(shape, roi, roi)`` cuts the
volume into roi-sized tiles that do not overlap except the last one per axis, shifted back to end at the border;
tiles are attacked in mini-batches, each with its own label crop and its own seed. Two departures, on purpose: where
tiles overlap, their adversarial versions are averaged instead of the last one winning (§13 item 11, §14), and a
volume smaller than the roi is padded (the reference's assertions failed on it, §13 item 14).

``"sliding-window"`` makes one attack call on the whole volume with :class:`SlidingWindowModel` as the model, so the
attack optimises exactly the windows and blending that evaluation uses.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from monai.data.utils import dense_patch_slices

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.inference.sliding import BLEND_MODES, SlidingWindowModel, check_images, check_roi, window_count
from SpectrumAttackLib.progress import Cancelled, Progress, ProgressCallback

__all__ = ["ATTACK_MODES", "Cancelled", "VolumeAttackResult", "attack_volume", "attack_work", "tile_slices"]

#: how a whole volume is attacked.
ATTACK_MODES = ("tiles", "sliding-window")

CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class VolumeAttackResult:
    """What :func:`attack_volume` returns.

    Attributes:
        adversarial: ``[1, C, H, W, D]``, dtype and device of the input images, values in [0, 1].
        seconds: wall-clock time of the whole-volume attack.
        tiles: windows the attack optimised: tiles in ``"tiles"`` mode, sliding windows per forward pass in
            ``"sliding-window"`` mode.
        history: the attack's per-step ``loss``, ``dice``, ``ssim`` and ``restart`` lists, concatenated over the
            tile batches, plus ``batch`` (the tile-batch index of each entry; always 0 in sliding-window mode).
        config: the attack's parameters plus ``mode``, ``roi``, ``tile_batch_size``, ``overlap``.
    """

    adversarial: torch.Tensor
    seconds: float
    tiles: int
    history: dict[str, list[float]]
    config: dict = field(default_factory=dict)


def tile_slices(shape: Sequence[int], roi: Sequence[int]) -> list[tuple[slice, slice, slice]]:
    """The reference's tiles: ``dense_patch_slices(max(shape, roi), roi, roi)``.

    Tiles are roi-sized and do not overlap, except the last one along each axis, which is shifted back to end at
    the border. For a volume smaller than ``roi`` along an axis the slices refer to the volume padded up to ``roi``.

    Args:
        shape: spatial size ``(H, W, D)`` of the volume in voxels.
        roi: tile size ``(h, w, d)`` in voxels.

    Returns:
        one ``(slice_h, slice_w, slice_d)`` per tile, in row-major order (D fastest).
    """
    roi = check_roi(roi)
    padded = tuple(max(int(s), r) for s, r in zip(shape, roi, strict=True))
    return list(dense_patch_slices(padded, roi, roi))


def attack_work(attack: Attack, shape: Sequence[int], roi: Sequence[int], mode: str = "tiles",
                tile_batch_size: int = 4) -> int:
    """Units of progress :func:`attack_volume` reports for this attack and volume (attack steps over all batches)."""
    mode = check_choice("mode", mode, ATTACK_MODES)
    per_call = max(attack.steps, 1) * attack.restarts
    if mode == "sliding-window":
        return per_call
    batches = -(-len(tile_slices(shape, roi)) // check_int("tile_batch_size", tile_batch_size, 1))
    return batches * per_call


def _pad_to(tensor: torch.Tensor, size: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad the spatial axes up to ``size`` (split evenly, as MONAI's sliding window does); return the crop."""
    pad: list[int] = []
    crop: list[slice] = []
    for axis in (4, 3, 2):
        diff = max(int(size[axis - 2]) - tensor.shape[axis], 0)
        pad += [diff // 2, diff - diff // 2]
    for axis in (2, 3, 4):
        before = pad[2 * (4 - axis)]
        crop.append(slice(before, before + tensor.shape[axis]))
    if any(pad):
        tensor = F.pad(tensor, pad)
    return tensor, (slice(None), slice(None), *crop)


def _with_seed(attack: Attack, seed: int) -> Attack:
    """A shallow copy of ``attack`` using ``seed``; the caller's object is never modified."""
    clone = copy.copy(attack)
    clone.seed = seed
    return clone


def _merge_history(total: dict[str, list[float]], part: dict[str, list[float]], batch: int) -> None:
    length = 0
    for key, values in part.items():
        total.setdefault(key, []).extend(values)
        length = max(length, len(values))
    total.setdefault("batch", []).extend([batch] * length)


def attack_volume(
    attack: Attack,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    roi: Sequence[int] | int,
    mode: str = "tiles",
    tile_batch_size: int = 4,
    overlap: float = 0.5,
    sw_batch_size: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelFn | None = None,
    window_model: torch.nn.Module | None = None,
) -> VolumeAttackResult:
    """Attack one whole volume with ``attack``.

    Args:
        attack: an attack from :func:`SpectrumAttackLib.attacks.create`, built on the plain segmentation model. It
            is not modified: each tile batch uses a copy seeded with ``attack.seed + batch·attack.restarts`` (the
            reference drew unseeded noise per batch, §13 item 24), and sliding-window mode uses a copy whose model
            is wrapped in :class:`SlidingWindowModel`.
        images: ``[1, C, H, W, D]`` float in [0, 1], the whole volume in the model grid.
        labels: ``[1, 1, H, W, D]`` integer class map the attack pushes the prediction away from (ground truth or
            the clean prediction).
        roi: tile / window size ``(h, w, d)`` in voxels (an int for a cube), e.g. 96.
        mode: ``"tiles"`` (the reference's tiling; overlaps averaged) or ``"sliding-window"`` (one attack call on
            the evaluation's windows). Default "tiles".
        tile_batch_size: tiles per attack call in ``"tiles"`` mode, ≥ 1. Default 4 (the SA² scripts' value).
        overlap, sw_batch_size: sliding-window settings in ``"sliding-window"`` mode (see
            :func:`~SpectrumAttackLib.inference.sliding.predict_logits`). Default 0.5 and 1.
        progress: called after every attack step with ``Progress(done, total, "attack", message)`` counted over
            the whole volume (``total`` = :func:`attack_work`).
        cancel: called before every tile batch and after every attack step; returning True stops the job.
        window_model: the whole-volume model of ``"sliding-window"`` mode when the model windows itself (an
            nnU-Net model's :class:`~SpectrumAttackLib.inference.nnunet.NnUNetSlidingWindow`); default
            :class:`SlidingWindowModel` around ``attack.model``.

    Returns:
        :class:`VolumeAttackResult` with the adversarial volume in the input's dtype and device.

    Raises:
        ValueError: bad shapes, values or settings (named in the message).
        Cancelled: ``cancel()`` returned True.

    Example:
        >>> attack = attacks.create("saa", model, steps=10, rho=0.2, block_size=16)
        >>> result = attack_volume(attack, images, labels, roi=96, mode="tiles")
    """
    if not isinstance(attack, Attack):
        raise TypeError(f"attack must be a SpectrumAttackLib.attacks.Attack, got {type(attack).__name__}.")
    check_images(images)
    if images.shape[0] != 1:
        raise ValueError(f"images must hold one volume [1, C, H, W, D], got shape {list(images.shape)}.")
    expected = [1, 1, *images.shape[2:]]
    if not isinstance(labels, torch.Tensor) or list(labels.shape) != expected:
        got = list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must have shape [1, 1, H, W, D] matching images {list(images.shape)}, got {got}.")
    roi = check_roi(roi)
    mode = check_choice("mode", mode, ATTACK_MODES)
    tile_batch_size = check_int("tile_batch_size", tile_batch_size, 1)
    overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
    sw_batch_size = check_int("sw_batch_size", sw_batch_size, 1)
    if cancel is not None and not callable(cancel):
        raise TypeError(f"cancel must be callable or None, got {cancel!r}.")

    start = time.perf_counter()
    total = attack_work(attack, images.shape[2:], roi, mode, tile_batch_size)
    config = {**attack.config, "mode": mode, "roi": list(roi), "tile_batch_size": tile_batch_size,
              "overlap": overlap}
    history: dict[str, list[float]] = {}

    def reporter(offset: int, detail: str) -> ProgressCallback:
        def report(p: Progress) -> None:
            if progress is not None:
                message = f"{detail}, {p.message}" if p.message else detail
                progress(Progress(offset + p.done, total, "attack", message))
            if cancel is not None and cancel():
                raise Cancelled("attack cancelled")
        return report

    if mode == "sliding-window":
        if cancel is not None and cancel():
            raise Cancelled("attack cancelled")
        windowed = copy.copy(attack)
        windowed.model = window_model if window_model is not None \
            else SlidingWindowModel(attack.model, roi, overlap, sw_batch_size, BLEND_MODES[0])
        result = windowed(images, labels, progress=reporter(0, "whole volume"))
        _merge_history(history, result.history, 0)
        count = window_model.window_count(images.shape[2:]) if hasattr(window_model, "window_count") \
            else window_count(images.shape[2:], roi, overlap)
        return VolumeAttackResult(result.adversarial, time.perf_counter() - start, count, history,
                                  {**config, "sw_batch_size": sw_batch_size})

    padded, crop = _pad_to(images, roi)
    padded_labels, _ = _pad_to(labels, roi)
    slices = tile_slices(images.shape[2:], roi)
    summed = torch.zeros_like(padded)
    count = torch.zeros((1, 1, *padded.shape[2:]), dtype=padded.dtype, device=padded.device)
    per_call = max(attack.steps, 1) * attack.restarts
    batches = [slices[i:i + tile_batch_size] for i in range(0, len(slices), tile_batch_size)]
    for index, batch in enumerate(batches):
        if cancel is not None and cancel():
            raise Cancelled("attack cancelled")
        windows = [(slice(None), slice(None), *s) for s in batch]
        tiles = torch.cat([padded[w] for w in windows])
        tile_labels = torch.cat([padded_labels[w] for w in windows])
        seeded = _with_seed(attack, attack.seed + index * attack.restarts)
        detail = f"tiles {index * tile_batch_size + 1}-{index * tile_batch_size + len(batch)} of {len(slices)}"
        result = seeded(tiles, tile_labels, progress=reporter(index * per_call, detail))
        for i, w in enumerate(windows):
            summed[w] += result.adversarial[i:i + 1]
            count[w] += 1
        _merge_history(history, result.history, index)
    adversarial = (summed / count)[crop]
    return VolumeAttackResult(adversarial, time.perf_counter() - start, len(slices), history, config)
