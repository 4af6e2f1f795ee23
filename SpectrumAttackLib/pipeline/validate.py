"""The one set of input checks every interface runs, with one wording.

The dataset commands (``attack``/``evaluate``/``transfer``), the single-image command line (``attack --image``),
``demo``, the Slicer CLI module, the Slicer logic and the Python API all read and check a case with these
functions, so the same bad file gets the same sentence everywhere: ``"<parameter> must be <what is allowed>,
got <what was found>."`` (see :mod:`SpectrumAttackLib.checks`). Only the parameter name differs: the flag of the
interface (``--image``, ``--data_dir``, ``inputVolume``, ``referenceLabel``, ...).

Example:
    >>> volume = read_image("ct.nii.gz", "--image")                 # readable, 3-D, finite
    >>> labels = read_labels("seg.nii.gz", "--label", volume.array.shape, num_classes=14)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from SpectrumAttackLib.inference.geometry import check_label_array, check_volume_array
from SpectrumAttackLib.io.volumes import Volume, read_volume

__all__ = ["check_image", "check_labels", "read_image", "read_labels", "warn_if_outside_window"]

#: below this fraction of voxels strictly inside the model's intensity window the image is called unlike the model's.
WINDOW_FRACTION = 0.01
#: CT shows fat (−150…−50 HU) and air (−1000 HU) below this value; soft tissue, blood and bone lie above it, and MR
#: intensities (≥ 0 apart from noise) hardly ever reach it.
FAT_AND_AIR_HU = -30.0
#: fewer voxels than this share below :data:`FAT_AND_AIR_HU` mark an image as "not CT" (measured in docs/safety.md:
#: 61–75 % on three real CTs, ≥ 1 % in every air-free 32³ crop of one, 0 % on a real abdominal MR).
CT_FAT_AND_AIR_FRACTION = 0.01


def check_image(name: str, array: Any) -> np.ndarray:
    """``array`` as numpy if it is a finite 3-D scalar volume with at least 2 voxels per axis, else ``ValueError``.

    Args:
        name: the parameter named in the message (``"--image"``, ``"inputVolume"``, ...).
        array: ``[I, J, K]`` voxels in input units (HU for CT); never modified.

    Raises:
        ValueError: not 3-D (a 2-D image, or a 4-D vector/RGB/time series volume), not real numbers, a single slice
            along some axis, NaN or infinite voxels.
    """
    array = check_volume_array(name, array)
    if min(array.shape) < 2:
        raise ValueError(f"{name} must be a 3-D volume with at least 2 voxels along each axis, got shape "
                         f"{list(array.shape)} (a 2-D image or a single slice).")
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(f"{name} must hold finite intensities, got {bad} NaN or infinite voxel(s).")
    return array


def check_labels(name: str, labels: Any, shape: Sequence[int], num_classes: int | None) -> np.ndarray:
    """``labels`` as int64 if it is a class-id map of ``shape`` with values in ``[0, num_classes)``.

    Args:
        name: the parameter named in the message.
        labels: ``[I, J, K]`` class ids on the image's grid.
        shape: the image's ``(I, J, K)``.
        num_classes: the model's class count, background included; None skips the upper bound.

    Raises:
        ValueError: another shape, non-integer values (0.5), negative values, or ids the model does not have.
    """
    array = check_label_array(name, labels, shape)
    if num_classes is not None and array.size and int(array.max()) >= num_classes:
        raise ValueError(f"{name} must hold class ids in [0, {num_classes - 1}] (the model has {num_classes} "
                         f"classes), got {int(array.max())}.")
    return array


def read_image(path: str | os.PathLike, name: str) -> Volume:
    """Read a NIfTI or NRRD image and run :func:`check_image` on it.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: another ending, a file that cannot be parsed (truncated, not an image), or a bad volume.
    """
    volume = read_volume(path, name=name)
    return Volume(array=check_image(name, volume.array), affine=volume.affine)


def read_labels(path: str | os.PathLike, name: str, shape: Sequence[int], num_classes: int | None) -> np.ndarray:
    """Read a NIfTI or NRRD label map and run :func:`check_labels` on it; ``[I, J, K]`` int64."""
    return check_labels(name, read_volume(path, name=name).array, shape, num_classes)


def warn_if_outside_window(name: str, array: np.ndarray, a_min: float, a_max: float) -> str | None:
    """Warn (never refuse) when the intensities do not look like the model's modality and window.

    Two signs: almost no voxel (< 1 %) lies strictly inside ``(a_min, a_max)``, so the window clips nearly
    everything; or the window is in Hounsfield units (``a_min < 0``) while fewer than 1 % of the voxels lie below
    −30 HU, where CT shows fat and air (an MR image, even one with a few negative values and most voxels inside the
    CT window; or a CT stored without its rescale slope/intercept). Limits: a CT cropped inside one solid organ
    (no fat, no air) is flagged too; an MR shifted into negative values by its export is not.

    Returns:
        The warning's text, or None when the image looks fine.
    """
    values = np.asarray(array)
    inside = float(np.count_nonzero((values > a_min) & (values < a_max))) / max(values.size, 1)
    reason = None
    if inside < WINDOW_FRACTION:
        reason = (f"only {100 * inside:.2g} % of its voxels lie inside the model's intensity window "
                  f"[{a_min:g}, {a_max:g}]")
    elif a_min < 0 and values.size:
        low = float(np.count_nonzero(values < FAT_AND_AIR_HU)) / values.size
        if low < CT_FAT_AND_AIR_FRACTION:
            reason = (f"only {100 * low:.2g} % of its voxels lie below {FAT_AND_AIR_HU:g} while the model's window "
                      f"[{a_min:g}, {a_max:g}] is in Hounsfield units (CT shows fat and air there: -150 to -50 "
                      f"and about -1000 HU)")
    if reason is None:
        return None
    message = (f"{name} does not look like the images the model was trained on: {reason}. Is it another modality "
               "(MR through a CT model) or stored in other units? The attack runs anyway; its results may mean "
               "little.")
    warnings.warn(message, UserWarning, stacklevel=2)
    return message


def check_blocks_fit_attack(block_size: Sequence[int] | None, roi: Sequence[int], shape: Sequence[int] | None,
                            mode: str) -> None:
    """Refuse DCT blocks larger than what the attack sees, naming that size for what it is.

    In ``"tiles"`` mode every attack call sees one ROI-sized tile (volumes smaller than the ROI are padded up to
    it); in ``"sliding-window"`` mode it sees the whole model-grid volume, padded up to the ROI.

    Args:
        block_size: the attack's ``block_size`` (an int for a cube, 2 entries for ``-2d`` attacks, 3 otherwise), or
            None (no blocks). Checked by the attack itself beforehand (integers ≥ 2).
        roi: the model's ROI ``(H, W, D)``.
        shape: the model-grid volume ``(H, W, D)``; None where only tiles mode is checked before any case is read.
        mode: ``"tiles"`` or ``"sliding-window"``.

    Raises:
        ValueError: a block edge longer than the attacked region along its axis.
    """
    if block_size is None:
        return
    if mode == "tiles" or shape is None:
        region, what = tuple(int(r) for r in roi), "the model's ROI (the tile each attack step sees)"
        if mode != "tiles":
            return
    else:
        region = tuple(max(int(n), int(r)) for n, r in zip(shape, roi, strict=True))
        what = "the volume in the model grid, padded to the ROI (sliding-window mode)"
    block = (int(block_size),) * len(region) if isinstance(block_size, int) else tuple(int(b) for b in block_size)
    if any(b > n for b, n in zip(block, region, strict=False)):
        raise ValueError(f"block_size must not exceed {what} {list(region)} on any axis, got {list(block)}.")
