"""Per-case evaluation of an attack: overlap (Dice, HD95), image similarity (SSIM, PSNR, LPIPS), fooling rate.

Two presets name what is measured (seed-algorithms §11, §13 item 13):

``paper`` — the reference's definitions:
    Dice as MONAI's ``compute_dice(include_background=True, ignore_empty=True)`` per class, mean over **all**
    classes including background, NaN (skipped) where the class is absent from the reference. HD95 as MONAI's
    ``compute_hausdorff_distance(percentile=95, directed=False)`` in **voxels** of the evaluated grid (no spacing),
    mean over all classes including background. SSIM is the mean 2D SSIM over axial slices on the 0–255 scale.
    One difference: where a class is empty in exactly one of the two maps (an organ the attack erased), the
    reference's MONAI (0.9–1.2) returned an infinite HD95, so its per-case and overall means became infinite;
    here (as in MONAI ≥ 1.3) that HD95 is NaN and the means skip it. Dice records such a missed organ as 0.

``clinical`` — per organ, background excluded:
    Dice per organ; an organ absent from both maps is skipped (NaN), an organ absent from the reference but
    predicted scores 0 (a hallucinated organ is an error). HD95 in **mm** using ``spacing_mm``. SSIM is the 3D
    SSIM of the whole volume (uniform 7×7×7 window, data range 1).

In both presets HD95 is NaN for a class that is empty in the prediction or in the reference (a distance to
nothing is undefined; Dice already records a missed organ as 0) and class means skip NaN. PSNR (peak 1, same as
the reference's ``data_range=255`` on ×255) is ``None`` with a status for identical volumes, where it is
infinite. The voxel fooling rate is the fraction of voxels where the adversarial and clean predictions differ.
Every NaN or infinity is returned as ``None``, so the result dumps to strict JSON.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.metrics import similarity, surface_distance
from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM
from SpectrumAttackLib.runtime import resolve_device

__all__ = ["MetricsPreset", "compute_case_metrics", "default_class_names", "overlap_per_class", "to_volume"]


class MetricsPreset(str, Enum):
    """Which definitions :func:`compute_case_metrics` uses (see the module docstring)."""

    PAPER = "paper"
    CLINICAL = "clinical"


_UNITS: dict[MetricsPreset, dict[str, str]] = {
    MetricsPreset.PAPER: {
        "dice": "fraction in [0, 1]; mean over all classes including background, classes absent from the "
        "reference skipped (the reference's mean Dice incl. background)",
        "hd95": "voxels",
        "hd95_definition": "95th-percentile symmetric Hausdorff distance in voxels of the evaluated grid (no "
        "spacing), mean over classes including background; null where the class is empty in the prediction or "
        "the reference (the reference's MONAI gave infinity there, making its mean infinite; skipped here)",
        "ssim": "mean 2D SSIM over axial slices (skimage, 7x7 uniform window, volumes x255, data_range 255), "
        "the reference's definition",
    },
    MetricsPreset.CLINICAL: {
        "dice": "fraction in [0, 1]; mean over organs, background excluded; an organ absent from both maps is "
        "skipped, an organ absent from the reference only scores 0",
        "hd95": "mm",
        "hd95_definition": "95th-percentile symmetric Hausdorff distance in mm (spacing_mm), mean over organs, "
        "background excluded; null where the organ is empty in the prediction or the reference",
        "ssim": "3D SSIM of the whole volume (skimage, 7x7x7 uniform window, data_range 1)",
    },
}
_COMMON_UNITS = {
    "psnr": "dB, peak 1 on [0, 1] intensities (equal to data_range 255 on the 0-255 scale); null for identical "
    "volumes (infinite PSNR)",
    "fooling_rate": "fraction of voxels whose label differs between the adversarial and the clean prediction",
    "lpips": "mean LPIPS distance (AlexNet) over axial slices, lower = more similar; the papers report 1 - lpips",
}
_REFERENCE_NOTE = {
    "labels": "Dice and HD95 compare each prediction with the ground-truth labels",
    "clean prediction": "no labels given: Dice and HD95 compare each prediction with the clean prediction, so the "
    "clean Dice is 1.0 and the clean HD95 0 by definition",
}


def default_class_names(num_classes: int) -> list[str]:
    """``["background", "class_1", ..., "class_{K-1}"]``."""
    return ["background"] + [f"class_{k}" for k in range(1, num_classes)]


def to_volume(name: str, value: Any, *, integer: bool) -> np.ndarray:
    """Return a numpy or torch volume as a ``[H, W, D]`` numpy array, checking layout and values.

    Leading axes of size 1 (``[1, H, W, D]``, ``[1, 1, H, W, D]``) are dropped. Label maps (``integer=True``)
    come back as int64 and may be given as whole-valued floats; images (``integer=False``) come back as float32
    and must lie in [0, 1].

    Raises:
        TypeError: ``value`` is neither a numpy array nor a torch tensor.
        ValueError: wrong number of axes, non-integer labels, or image intensities outside [0, 1].
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(value).__name__}.")
    while value.ndim > 3 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 3:
        raise ValueError(f"{name} must have shape [H, W, D] (leading axes of size 1 allowed), got {list(value.shape)}.")
    if integer:
        if not np.issubdtype(value.dtype, np.integer) and not np.array_equal(value, np.round(value)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {value.dtype} with fractions.")
        return value.astype(np.int64, copy=False)
    value = value.astype(np.float32, copy=False)
    low, high = float(value.min()), float(value.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} must have intensities in [0, 1] (after the intensity window), got [{low}, {high}].")
    return value


def overlap_per_class(
    pred: np.ndarray,
    reference: np.ndarray,
    num_classes: int,
    *,
    preset: str | MetricsPreset = MetricsPreset.CLINICAL,
    spacing_mm: Sequence[float] | None = None,
    hd95_classes: Sequence[int] | None = None,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Dice and HD95 of every class (background included), by the rules of ``preset``.

    Both equal MONAI's ``compute_dice`` and ``compute_hausdorff_distance(percentile=95)`` per class, bit for bit
    (:mod:`SpectrumAttackLib.metrics.surface_distance` computes them from the label maps without MONAI's per-class
    one-hot conversion and cropping).

    Args:
        pred, reference: ``[H, W, D]`` int label maps with values in ``[0, num_classes)``.
        num_classes: K, background included.
        preset: ``"paper"`` (Dice NaN where the reference lacks the class) or ``"clinical"`` (Dice NaN only where
            both maps lack it, so a class predicted but absent from the reference scores 0).
        spacing_mm: voxel size for HD95 in mm; ``None`` gives HD95 in voxels.
        hd95_classes: the classes whose HD95 is measured (the others are NaN); default all.
        counts: :func:`~SpectrumAttackLib.metrics.surface_distance.voxel_counts` of the two maps, when the caller
            has them already.

    Returns:
        ``(dice, hd95)``, two float64 arrays ``[K]``; HD95 is NaN where either map lacks the class.
    """
    preset = MetricsPreset(check_choice("preset", getattr(preset, "value", preset), [p.value for p in MetricsPreset]))
    spacing = None if spacing_mm is None else [float(s) for s in spacing_mm]
    counts = surface_distance.voxel_counts(pred, reference, num_classes) if counts is None else counts
    predicted, present, _ = counts
    dice = surface_distance.dice_per_class(pred, reference, num_classes, ignore_empty=preset is MetricsPreset.PAPER,
                                           counts=counts)
    dice[(predicted == 0) & (present == 0)] = np.nan  # absent from both maps: undefined in both presets
    hd95 = np.full(num_classes, np.nan)
    # Bounding boxes of every foreground class in one pass over each map; every class is then measured inside the
    # union of its two boxes (voxels outside belong to neither mask, so HD95 is unchanged) instead of over the whole
    # volume once per class.
    whole = (slice(None),) * pred.ndim
    pred_boxes = [whole, *ndimage.find_objects(pred, max_label=num_classes - 1)]
    ref_boxes = [whole, *ndimage.find_objects(reference, max_label=num_classes - 1)]
    measured = [k for k in (range(num_classes) if hd95_classes is None else hd95_classes)
                if predicted[k] > 0 and present[k] > 0]  # a distance to nothing is undefined

    def hausdorff(k: int) -> float:
        box = _union_box(pred_boxes[k], ref_boxes[k])
        return surface_distance.percentile_hausdorff(pred[box] == k, reference[box] == k, spacing)

    # classes in parallel: scipy's erosion and distance transform release the GIL (one thread per core)
    with ThreadPoolExecutor(max(1, min(len(measured), os.cpu_count() or 1))) as pool:
        hd95[measured] = list(pool.map(hausdorff, measured))
    return dice, hd95


def _union_box(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...]:
    """The smallest box holding two ``find_objects`` boxes (either may be ``None``)."""
    if a is None or b is None:
        return a if b is None else b
    return tuple(
        slice(None) if sa.start is None or sb.start is None else slice(min(sa.start, sb.start), max(sa.stop, sb.stop))
        for sa, sb in zip(a, b, strict=True)
    )


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _nanmean_or_none(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _overlap_section(
    pred: np.ndarray, reference: np.ndarray, num_classes: int, names: list[str], included: list[int],
    preset: MetricsPreset, spacing_mm: Sequence[float] | None,
) -> dict[str, Any]:
    counts = surface_distance.voxel_counts(pred, reference, num_classes)
    dice, hd95 = overlap_per_class(pred, reference, num_classes, preset=preset, spacing_mm=spacing_mm,
                                   hd95_classes=included, counts=counts)
    predicted, present, both = counts
    return {
        "dice": _nanmean_or_none(dice[included]),
        "dice_per_class": {names[k]: _finite_or_none(dice[k]) for k in included},
        "hd95": _nanmean_or_none(hd95[included]),
        "hd95_per_class": {names[k]: _finite_or_none(hd95[k]) for k in included},
        "voxel_counts": {"intersection": both.tolist(), "prediction": predicted.tolist(),
                         "reference": present.tolist()},
    }


def _ssim(clean: np.ndarray, adversarial: np.ndarray, preset: MetricsPreset,
          clean_ssim: VolumeSSIM | None) -> tuple[float | None, str]:
    axes = clean.shape[:2] if preset is MetricsPreset.PAPER else clean.shape
    if min(axes) < similarity.SSIM_WINDOW:
        window = similarity.SSIM_WINDOW
        return None, f"unavailable: volume {list(clean.shape)} is smaller than the {window}-voxel SSIM window"
    if preset is MetricsPreset.PAPER:
        return similarity.ssim_axial_mean(clean, adversarial), "ok"
    return (VolumeSSIM(clean) if clean_ssim is None else clean_ssim)(adversarial), "ok"


def _lpips(clean: np.ndarray, adversarial: np.ndarray, model: Any) -> tuple[float | None, str]:
    if model is None:
        available, reason = similarity.lpips_availability()
        if not available:
            return None, f"unavailable: {reason}"
        model = similarity.load_default_lpips(str(resolve_device("auto")))
    return similarity.lpips_distance(clean, adversarial, model), "ok"


def _check_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return default_class_names(num_classes)
    names = [str(n) for n in class_names]
    if len(names) != num_classes or len(set(names)) != num_classes:
        raise ValueError(
            f"class_names must be {num_classes} distinct names (background first, one per class), got {names!r}."
        )
    return names


def _check_spacing(spacing_mm: Sequence[float]) -> tuple[float, float, float]:
    if isinstance(spacing_mm, (str, bytes)) or not isinstance(spacing_mm, Sequence) or len(spacing_mm) != 3:
        raise ValueError(f"spacing_mm must be 3 voxel sizes in mm (H, W, D axes), got {spacing_mm!r}.")
    return tuple(check_range("spacing_mm", s, 0.0, None, low_inclusive=False) for s in spacing_mm)


def compute_case_metrics(
    clean_image: np.ndarray | torch.Tensor,
    adv_image: np.ndarray | torch.Tensor,
    seg_clean: np.ndarray | torch.Tensor,
    seg_adv: np.ndarray | torch.Tensor,
    *,
    labels: np.ndarray | torch.Tensor | None = None,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
    preset: str | MetricsPreset = "clinical",
    lpips_model: similarity.LpipsModel | None = None,
    clean_section: dict[str, Any] | None = None,
    clean_ssim: VolumeSSIM | None = None,
) -> dict[str, Any]:
    """All metrics of one case (one volume) under attack.

    Args:
        clean_image, adv_image: intensities in [0, 1], clean and adversarial.
        seg_clean, seg_adv: predicted label maps on the clean and the adversarial image, values in ``[0, K)``.
        labels: ground-truth label map. ``None`` makes the clean prediction the reference for Dice and HD95.
        num_classes: K, background included; K ≥ 2.
        class_names: K distinct names, background first. Default ``background, class_1, ...``.
        spacing_mm: voxel size along (H, W, D) in mm, each > 0; used for HD95 by the ``clinical`` preset only
            (``paper`` measures HD95 in voxels, as the reference does, and silently ignores it). Default (1, 1, 1).
        preset: ``"clinical"`` (default) or ``"paper"``; see the module docstring.
        lpips_model: a callable LPIPS distance (see :func:`similarity.lpips_distance`). ``None`` uses
            ``lpips.LPIPS(net="alex")`` when it can be built offline, else LPIPS is reported as unavailable.
        clean_section: the ``"clean"`` section of an earlier call with the same ``seg_clean``, labels, classes,
            spacing and preset, used as is instead of being computed again (several attacks on one case).
        clean_ssim: :class:`~SpectrumAttackLib.metrics.volume_ssim.VolumeSSIM` of ``clean_image``, whose window
            statistics the ``clinical`` 3-D SSIM then uses instead of computing them again (several attacks on
            one case).

    Shape:
        every volume ``[H, W, D]`` (numpy or torch; leading axes of size 1 dropped), all the same shape, D the
        axial axis.

    Returns:
        ``{"preset", "reference": "labels" | "clean prediction", "reference_note", "classes",
        "clean": {"dice", "dice_per_class", "hd95", "hd95_per_class", "voxel_counts"},
        "adversarial": {the same, "ssim", "ssim_status", "psnr", "psnr_status", "fooling_rate", "lpips",
        "lpips_status"}, "units": {...}}``. Per-class dicts are keyed by class name (background only under
        ``paper``); ``voxel_counts``: per class index (background included) the voxels of the prediction, of the
        reference and of both (``{"intersection", "prediction", "reference"}``, lists of ints), the terms of a
        voxel-aggregated Dice. Other values are floats or ``None`` (undefined or unavailable; the matching
        ``*_status`` says why).

    Raises:
        ValueError: bad ``preset``, ``num_classes``, ``class_names`` or ``spacing_mm``; volumes of different
            shapes; label values outside ``[0, K)``; intensities outside [0, 1].
        TypeError: a volume is neither numpy nor torch.

    Example:
        >>> m = compute_case_metrics(img, adv, pred, pred_adv, labels=gt, num_classes=14, spacing_mm=(1.5, 1.5, 2))
        >>> m["adversarial"]["dice"], m["units"]["hd95"]
    """
    preset = MetricsPreset(check_choice("preset", getattr(preset, "value", preset), [p.value for p in MetricsPreset]))
    num_classes = check_int("num_classes", num_classes, 2)
    names = _check_class_names(class_names, num_classes)
    spacing = _check_spacing(spacing_mm)  # checked under both presets; callers pass it whatever the preset

    volumes = {
        "clean_image": to_volume("clean_image", clean_image, integer=False),
        "adv_image": to_volume("adv_image", adv_image, integer=False),
        "seg_clean": to_volume("seg_clean", seg_clean, integer=True),
        "seg_adv": to_volume("seg_adv", seg_adv, integer=True),
    }
    if labels is not None:
        volumes["labels"] = to_volume("labels", labels, integer=True)
    shape = volumes["clean_image"].shape
    for name, volume in volumes.items():
        if volume.shape != shape:
            raise ValueError(f"{name} must have the shape of clean_image {list(shape)}, got {list(volume.shape)}.")
        if name.startswith("seg") or name == "labels":
            low, high = int(volume.min()), int(volume.max())
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"{name} must hold class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                    f"got values in [{low}, {high}]."
                )

    reference_kind = "labels" if labels is not None else "clean prediction"
    reference = volumes.get("labels", volumes["seg_clean"])
    included = list(range(num_classes)) if preset is MetricsPreset.PAPER else list(range(1, num_classes))
    hd_spacing = spacing if preset is MetricsPreset.CLINICAL else None

    clean = dict(clean_section) if clean_section is not None else _overlap_section(
        volumes["seg_clean"], reference, num_classes, names, included, preset, hd_spacing)
    adversarial = _overlap_section(volumes["seg_adv"], reference, num_classes, names, included, preset, hd_spacing)
    image, adv = volumes["clean_image"], volumes["adv_image"]
    adversarial["ssim"], adversarial["ssim_status"] = _ssim(image, adv, preset, clean_ssim)
    psnr = similarity.psnr(image, adv)
    adversarial["psnr"] = _finite_or_none(psnr)
    adversarial["psnr_status"] = "ok" if math.isfinite(psnr) else "identical images: PSNR is infinite"
    adversarial["fooling_rate"] = float(np.mean(volumes["seg_adv"] != volumes["seg_clean"]))
    adversarial["lpips"], adversarial["lpips_status"] = _lpips(image, adv, lpips_model)
    return {
        "preset": preset.value,
        "reference": reference_kind,
        "reference_note": _REFERENCE_NOTE[reference_kind],
        "classes": [names[k] for k in included],
        "clean": clean,
        "adversarial": adversarial,
        "units": {**_UNITS[preset], **_COMMON_UNITS},
    }
