"""From a volume in its own grid to the model grid and back.

A volume arrives as an IJK array plus its IJK→RAS matrix, in any orientation, possibly flipped, oblique or
anisotropic. The model expects what the reference's MONAI pipeline produced (seed-algorithms §9): axes along the
catalogue orientation (RAS), the catalogue spacing, intensities windowed to [b_min, b_max] with clipping.

The mapping is done in two parts so that nothing is interpolated that need not be:

1. **Reorientation** (exact): the array is transposed and flipped so that each axis runs along the model axis it is
   closest to (as MONAI's ``Orientation``).
2. **Resampling** (only if needed): if the reoriented grid is axis-aligned and already has the model spacing, it *is*
   the model grid; otherwise the model grid is a new axis-aligned grid of the model spacing covering the volume's
   extent, centred on it, and values are interpolated (linear for images, nearest for labels) with an explicit
   affine map. Oblique inputs are therefore resampled onto an axis-aligned grid.

Intensity windowing follows MONAI's ``ScaleIntensityRange(a_min, a_max, b_min, b_max, clip=True)``, after
resampling, as in the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from SpectrumAttackLib.checks import check_choice, check_range

__all__ = [
    "GridMapping",
    "check_label_array",
    "check_volume_array",
    "from_model_grid",
    "labels_to_model_grid",
    "model_grid_array",
    "to_model_grid",
    "window_intensity",
]

#: relative tolerance under which two directions or spacings count as equal (no resampling).
_TOLERANCE = 1e-4

_AXIS_CODES = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


@dataclass(frozen=True, eq=False)
class GridMapping:
    """How one volume maps to the model grid; built by :func:`to_model_grid`.

    Attributes:
        input_shape: ``(I, J, K)`` of the input array.
        input_affine: ``4×4`` IJK→RAS matrix of the input (mm), float64.
        permutation: input axis that becomes axis ``m`` of the reoriented grid, for ``m = 0, 1, 2``.
        flips: whether reoriented axis ``m`` runs backwards along that input axis.
        reoriented_affine: ``4×4`` IJK→RAS matrix of the reoriented (transposed and flipped) input.
        model_shape: ``(H, W, D)`` of the model grid.
        model_affine: ``4×4`` IJK→RAS matrix of the model grid (mm).
        resampled: False when the model grid is the reoriented input grid (no interpolation anywhere).
        spacing_mm: voxel size of the model grid along ``H, W, D`` in mm.
        orientation: axis codes of the model grid (e.g. ``"RAS"``).
        a_min, a_max, b_min, b_max: the intensity window, input units (HU for CT) → model units.
    """

    input_shape: tuple[int, int, int]
    input_affine: np.ndarray
    permutation: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    reoriented_affine: np.ndarray
    model_shape: tuple[int, int, int]
    model_affine: np.ndarray
    resampled: bool
    spacing_mm: tuple[float, float, float]
    orientation: str
    a_min: float
    a_max: float
    b_min: float
    b_max: float

    @property
    def identity(self) -> bool:
        """True when the model grid is the input grid itself (RAS input with the model spacing)."""
        return not self.resampled and self.permutation == (0, 1, 2) and not any(self.flips)

    @property
    def intensity_scale(self) -> float:
        """Input intensity units per model unit, ``(a_max − a_min) / (b_max − b_min)`` (e.g. 425 HU per 1)."""
        return (self.a_max - self.a_min) / (self.b_max - self.b_min)

    def window(self, values: np.ndarray) -> np.ndarray:
        """Input intensities → model intensities (float32), clipped to ``[b_min, b_max]``."""
        return window_intensity(values, self.a_min, self.a_max, self.b_min, self.b_max)


def window_intensity(values: np.ndarray, a_min: float, a_max: float, b_min: float, b_max: float) -> np.ndarray:
    """``ScaleIntensityRange(a_min, a_max, b_min, b_max, clip=True)`` in float32."""
    values = np.asarray(values, dtype=np.float32)
    scale = np.float32((b_max - b_min) / (a_max - a_min))
    out = (values - np.float32(a_min)) * scale + np.float32(b_min)
    return np.clip(out, np.float32(b_min), np.float32(b_max), out=out)


# ------------------------------------------------------------------------------------------------ checks
def check_volume_array(name: str, array: Any) -> np.ndarray:
    """``array`` as a numpy array if it is a non-empty 3-D real volume ``[I, J, K]``, else ``ValueError``."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim != 3:
        kind = " (a vector or RGB volume; convert it to a scalar volume first)" if array.ndim == 4 else ""
        raise ValueError(f"{name} must be a 3-D scalar array [I, J, K]{kind}, got shape {list(array.shape)}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    if min(array.shape) < 1:
        raise ValueError(f"{name} must not be empty, got shape {list(array.shape)}.")
    return array


def check_label_array(name: str, labels: Any, shape: Sequence[int]) -> np.ndarray:
    """``labels`` as int64 if it is a ``shape``-sized map of integer class indices ≥ 0, else ``ValueError``."""
    array = check_volume_array(name, labels)
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name} must have the image's shape {list(shape)}, got {list(array.shape)}.")
    exact = np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_
    if not exact and (not np.isfinite(array).all() or not np.array_equal(array, np.round(array))):
        raise ValueError(f"{name} must hold integer class indices, got non-integer values.")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ValueError(f"{name} must have values >= 0, got {int(array.min())}.")
    return array


def _check_affine(affine: Any) -> np.ndarray:
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"affine must be a finite 4×4 IJK→RAS matrix, got shape {list(matrix.shape)}.")
    if not np.allclose(matrix[3], (0, 0, 0, 1)):
        raise ValueError(f"affine must have last row [0, 0, 0, 1], got {matrix[3].tolist()!r}.")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise ValueError("affine must be invertible (non-zero voxel size along every axis), got a singular matrix.")
    return matrix


def _check_orientation(orientation: Any) -> np.ndarray:
    """Axis codes → 3×3 matrix whose column m is the RAS unit vector of model axis m."""
    code = str(orientation).upper() if isinstance(orientation, str) else orientation
    if not isinstance(code, str) or len(code) != 3 or any(c not in _AXIS_CODES for c in code) \
            or len({_AXIS_CODES[c][0] for c in code}) != 3:
        raise ValueError(f"orientation must be three axis codes, one of R/L, A/P and S/I each (e.g. 'RAS'), "
                         f"got {orientation!r}.")
    directions = np.zeros((3, 3))
    for m, c in enumerate(code):
        axis, sign = _AXIS_CODES[c]
        directions[axis, m] = sign
    return directions


def _check_spacing(spacing_mm: Any) -> tuple[float, float, float]:
    if isinstance(spacing_mm, (int, float)) and not isinstance(spacing_mm, bool):
        spacing_mm = (spacing_mm,) * 3
    values = tuple(np.asarray(spacing_mm, dtype=np.float64).reshape(-1).tolist()) \
        if not isinstance(spacing_mm, str) else ()
    if len(values) != 3:
        raise ValueError(f"spacing_mm must be 3 positive numbers (mm), got {spacing_mm!r}.")
    return tuple(check_range("spacing_mm", v, 0.0, low_inclusive=False, hint="mm") for v in values)  # type: ignore


# ----------------------------------------------------------------------------------------- grid building
def _reorientation(linear: np.ndarray, directions: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, ...]]:
    """For each model axis, the input axis closest to it and whether it runs backwards."""
    cosines = directions.T @ (linear / np.linalg.norm(linear, axis=0))  # [model axis, input axis]
    permutation = [-1, -1, -1]
    free_m, free_j = [0, 1, 2], [0, 1, 2]
    for _ in range(3):
        m, j = max(((m, j) for m in free_m for j in free_j), key=lambda mj: abs(cosines[mj]))
        permutation[m] = j
        free_m.remove(m)
        free_j.remove(j)
    flips = tuple(bool(cosines[m, permutation[m]] < 0) for m in range(3))
    return tuple(permutation), flips  # type: ignore[return-value]


def _reorient_index_matrix(shape: Sequence[int], permutation: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """4×4 matrix taking a reoriented voxel index to the input voxel index."""
    matrix = np.zeros((4, 4))
    matrix[3, 3] = 1.0
    for m, (j, flip) in enumerate(zip(permutation, flips, strict=True)):
        matrix[j, m] = -1.0 if flip else 1.0
        matrix[j, 3] = shape[j] - 1 if flip else 0.0
    return matrix


def _reorient(array: np.ndarray, permutation: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    out = np.transpose(array, permutation)
    flipped = tuple(m for m, f in enumerate(flips) if f)
    return np.flip(out, flipped) if flipped else out


def _unreorient(array: np.ndarray, permutation: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """Inverse of :func:`_reorient` on the last three axes (leading channel axes kept)."""
    lead = array.ndim - 3
    flipped = tuple(lead + m for m, f in enumerate(flips) if f)
    if flipped:
        array = np.flip(array, flipped)
    inverse = np.argsort(permutation)
    return np.transpose(array, (*range(lead), *(lead + int(i) for i in inverse)))


def _model_grid(shape: Sequence[int], affine: np.ndarray, directions: np.ndarray,
                spacing: Sequence[float]) -> tuple[tuple[int, int, int], np.ndarray]:
    """Axis-aligned grid of ``spacing`` covering the voxel cells of a ``shape`` volume, centred on them."""
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in shape], indexing="ij")).reshape(3, -1)
    ras = affine[:3, :3] @ corners + affine[:3, 3:4]
    along = directions.T @ ras  # coordinates along the model axes
    low, high = along.min(1), along.max(1)
    spacing = np.asarray(spacing)
    model_shape = np.maximum(np.round((high - low) / spacing - _TOLERANCE), 1).astype(int)
    first = (low + high) / 2 - (model_shape - 1) / 2 * spacing
    model_affine = np.eye(4)
    model_affine[:3, :3] = directions * spacing
    model_affine[:3, 3] = directions @ first
    return tuple(int(n) for n in model_shape), model_affine  # type: ignore[return-value]


def _resample(source: np.ndarray, source_affine: np.ndarray, target_shape: Sequence[int],
              target_affine: np.ndarray, order: int, fill: float) -> np.ndarray:
    """Values of ``source`` at the voxel centres of the target grid (linear ``order=1`` or nearest ``order=0``).

    Points within one voxel outside the source take the edge value; points further out take ``fill``.
    """
    index_map = np.linalg.inv(source_affine) @ target_affine  # target index → source index
    linear, offset = index_map[:3, :3], index_map[:3, 3] + 1.0  # +1: the edge padding below
    if np.allclose(linear - np.diag(np.diag(linear)), 0.0, atol=_TOLERANCE):
        linear = np.diag(linear)  # scipy's faster axis-aligned path
    dtype = np.float32 if order else source.dtype
    padded = np.pad(source, 1, mode="edge")
    return ndimage.affine_transform(padded, linear, offset=offset, output_shape=tuple(target_shape),
                                    output=dtype, order=order, mode="constant", cval=fill, prefilter=False)


# ------------------------------------------------------------------------------------------------- public
def to_model_grid(
    array_ijk: np.ndarray,
    affine: np.ndarray,
    *,
    spacing_mm: Sequence[float],
    a_min: float,
    a_max: float,
    b_min: float = 0.0,
    b_max: float = 1.0,
    orientation: str = "RAS",
) -> tuple[torch.Tensor, GridMapping]:
    """Map a volume in its own grid to the model grid.

    Args:
        array_ijk: ``[I, J, K]`` scalar volume in input units (HU for CT); not modified.
        affine: ``4×4`` IJK→RAS matrix in mm (nibabel's affine); any orientation, flips, obliquity.
        spacing_mm: model voxel size ``(h, w, d)`` in mm along the model axes, e.g. (1.5, 1.5, 2.0).
        a_min, a_max: input intensity window (HU for CT), ``a_min < a_max``, e.g. −175 and 250.
        b_min, b_max: model intensities the window maps to, ``0 <= b_min < b_max <= 1``. Default 0 and 1.
        orientation: axis codes of the model grid. Default "RAS" (the reference's ``Orientationd('RAS')``).

    Returns:
        ``images`` ``[1, 1, H, W, D]`` float32 in ``[b_min, b_max]`` on the CPU, and the :class:`GridMapping`.
        When the input is already in ``orientation`` with the model spacing, ``images`` is the windowed input
        itself (no interpolation) and ``mapping.identity`` is True.

    Raises:
        ValueError: not a 3-D real array, non-finite voxels, a bad affine, spacing, window or orientation.

    Example:
        >>> images, mapping = to_model_grid(ct_hu, affine, spacing_mm=(1.5, 1.5, 2.0), a_min=-175, a_max=250)
        >>> seg = from_model_grid(logits.argmax(1)[0], mapping, mode="nearest")
    """
    array = check_volume_array("image", array_ijk)
    if not np.isfinite(array).all():
        raise ValueError("image must be finite, got NaN or infinite voxels.")
    matrix = _check_affine(affine)
    spacing = _check_spacing(spacing_mm)
    directions = _check_orientation(orientation)
    a_min = check_range("a_min", a_min)
    a_max = check_range("a_max", a_max)
    if a_max <= a_min:
        raise ValueError(f"a_max must be greater than a_min ({a_min:g}), got {a_max!r}.")
    b_min = check_range("b_min", b_min, 0.0, 1.0)
    b_max = check_range("b_max", b_max, 0.0, 1.0)
    if b_max <= b_min:
        raise ValueError(f"b_max must be greater than b_min ({b_min:g}), got {b_max!r}.")

    permutation, flips = _reorientation(matrix[:3, :3], directions)
    reoriented_affine = matrix @ _reorient_index_matrix(array.shape, permutation, flips)
    reoriented = _reorient(array, permutation, flips)
    along = directions.T @ reoriented_affine[:3, :3]  # reoriented axes in the model frame: diagonal if aligned
    sizes = np.linalg.norm(along, axis=0)
    aligned = np.allclose(along - np.diag(np.diag(along)), 0.0, atol=_TOLERANCE * sizes.max())
    same_spacing = np.allclose(sizes, spacing, rtol=_TOLERANCE, atol=0.0)
    if aligned and same_spacing:
        model_shape, model_affine, resampled = tuple(reoriented.shape), reoriented_affine, False
        values = reoriented
        spacing = tuple(float(s) for s in sizes)
    else:
        model_shape, model_affine = _model_grid(reoriented.shape, reoriented_affine, directions, spacing)
        resampled = True
        values = _resample(reoriented.astype(np.float32, copy=False), reoriented_affine, model_shape,
                           model_affine, order=1, fill=a_min)
    mapping = GridMapping(
        input_shape=tuple(array.shape), input_affine=matrix, permutation=permutation, flips=flips,
        reoriented_affine=reoriented_affine, model_shape=tuple(int(n) for n in model_shape),
        model_affine=model_affine, resampled=resampled, spacing_mm=spacing,
        orientation=str(orientation).upper(), a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max,
    )
    images = torch.from_numpy(np.ascontiguousarray(mapping.window(values)))[None, None]
    return images, mapping


def labels_to_model_grid(labels_ijk: np.ndarray, mapping: GridMapping) -> torch.Tensor:
    """Map an integer label map in the input grid to the model grid (nearest neighbour).

    Args:
        labels_ijk: ``[I, J, K]`` integer class map with the input's shape; not modified.
        mapping: from :func:`to_model_grid` on the matching image.

    Returns:
        ``[1, 1, H, W, D]`` int64 on the CPU; outside the input's extent (oblique inputs) the class is 0.

    Raises:
        ValueError: wrong shape, or non-integer values.
    """
    labels = check_label_array("labels", labels_ijk, mapping.input_shape)
    reoriented = _reorient(labels, mapping.permutation, mapping.flips)
    if mapping.resampled:
        reoriented = _resample(reoriented, mapping.reoriented_affine, mapping.model_shape, mapping.model_affine,
                               order=0, fill=0)
    return torch.from_numpy(np.ascontiguousarray(reoriented))[None, None]


def model_grid_array(volume: np.ndarray | torch.Tensor, model_shape: Sequence[int]) -> np.ndarray:
    """``volume`` as a numpy array, checked to be ``[H, W, D]`` or ``[C, H, W, D]`` with ``(H, W, D) = model_shape``.

    Raises:
        ValueError: another shape, naming the expected one.
    """
    if isinstance(volume, torch.Tensor):
        volume = volume.detach().cpu().numpy()
    volume = np.asarray(volume)
    if volume.ndim not in (3, 4) or tuple(volume.shape[-3:]) != tuple(model_shape):
        raise ValueError(f"volume must have shape [H, W, D] or [C, H, W, D] with H, W, D = "
                         f"{list(model_shape)}, got {list(volume.shape)}.")
    return volume


def from_model_grid(volume: np.ndarray | torch.Tensor, mapping: GridMapping, *, mode: str = "nearest") -> np.ndarray:
    """Map a model-grid volume (image, perturbation, segmentation, probabilities) back to the input grid.

    Args:
        volume: ``[H, W, D]`` or ``[C, H, W, D]`` on the model grid (numpy or torch, any device).
        mapping: from :func:`to_model_grid`.
        mode: ``"nearest"`` (label maps; keeps the dtype) or ``"linear"`` (intensities; float32). Without
            resampling both are exact and keep the dtype.

    Returns:
        numpy array ``[I, J, K]`` (or ``[C, I, J, K]``) in the input's IJK grid.

    Raises:
        ValueError: shape not matching ``mapping.model_shape``, or an unknown ``mode``.
    """
    mode = check_choice("mode", mode, ("nearest", "linear"))
    volume = model_grid_array(volume, mapping.model_shape)
    if mapping.resampled:
        order = 1 if mode == "linear" else 0
        source = volume.astype(np.float32, copy=False) if order else volume
        reoriented_shape = tuple(mapping.input_shape[j] for j in mapping.permutation)
        channels = source.reshape(-1, *mapping.model_shape)
        volume = np.stack([
            _resample(c, mapping.model_affine, reoriented_shape, mapping.reoriented_affine, order=order, fill=0)
            for c in channels
        ]).reshape(*volume.shape[:-3], *reoriented_shape)
    return np.ascontiguousarray(_unreorient(volume, mapping.permutation, mapping.flips))
