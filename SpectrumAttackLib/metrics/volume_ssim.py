"""skimage's 3-D SSIM (uniform 7×7×7 window, sample covariance, data range 1) from torch window sums, on any device.

``skimage.metrics.structural_similarity(clean, adversarial, data_range=1.0)`` filters five moments (x, y, x², y²,
xy) with ``scipy.ndimage.uniform_filter`` over the whole volume in float64 and averages the SSIM map after cropping
3 voxels from every side, i.e. exactly over the windows that lie inside the volume. Here only those "valid" windows
are summed (per axis, the sum of seven shifted views; every pass is a whole-volume torch addition, so it uses every
thread and runs on the volumes' device), and the work per adversarial volume is cut in two ways:

* the clean volume's moments (its window means and variances) are computed once, in float64, and kept
  (:class:`VolumeSSIM`), for the many adversarial volumes of one case (an audit's cells, a search's runs);
* the adversarial volume enters through its difference ``d = y − x`` to the clean one: ``μ_y = μ_x + μ_d``,
  ``σ_xy = σ_x² + cov(x, d)``, ``σ_y² = σ_x² + 2·cov(x, d) + σ_d²``, so three window sums per adversarial volume
  (d, d², x·d) instead of five, in float64, chunk by chunk along the first axis.

Equal to skimage to ~1e-15 (tests: 1e-8; the reported SSIM's target is 1e-6); 5–6× faster than skimage on a
2-core CPU at 256³, 9× with the clean statistics kept (``bench/ssim_cost.py``). What the audit reports and what
``at_ssim`` searches with are this one number.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["WINDOW", "VolumeSSIM", "volume_ssim"]

#: skimage's default window side.
WINDOW = 7
_K1, _K2 = 0.01, 0.03
_COV_NORM = WINDOW**3 / (WINDOW**3 - 1)  # skimage's sample covariance
#: output planes (along the first axis) per chunk: the chunk's buffers stay small (a few MB per 256² plane), are
#: reused from chunk to chunk, and the 6-plane halo costs at most (8 + 6) / 8 of the first two axes' sums
_CHUNK = 8


class _WindowSums:
    """Valid 7×7×7 window means of ``[M, h + 6, W, D]`` stacks, in two buffers reused from call to call (fresh
    whole-volume temporaries cost more in page faults than the additions themselves)."""

    def __init__(self, moments: int, shape: tuple[int, int, int], dtype: torch.dtype, device: torch.device) -> None:
        size = moments * (_CHUNK + WINDOW - 1) * shape[1] * shape[2]
        self._buffers = [torch.empty(size, dtype=dtype, device=device) for _ in range(2)]

    def means(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[M, h + 6, W, D]`` (h ≤ the chunk) → ``[M, h, W − 6, D − 6]``, a view of a buffer valid until the
        next call."""
        for index, axis in enumerate((-1, -2, -3)):
            n = x.shape[axis] - WINDOW + 1
            shape = list(x.shape)
            shape[axis] = n
            total = self._buffers[index % 2][: math.prod(shape)].view(shape)
            torch.add(x.narrow(axis, 0, n), x.narrow(axis, 1, n), out=total)
            for shift in range(2, WINDOW):
                total.add_(x.narrow(axis, shift, n))
            x = total
        return x.div_(WINDOW**3)


def _chunks(length: int) -> range:
    return range(0, length - WINDOW + 1, _CHUNK)


def _as_tensor(name: str, volume: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = volume.detach() if isinstance(volume, torch.Tensor) else torch.from_numpy(np.asarray(volume))
    if tensor.dim() != 3:
        raise ValueError(f"{name} must be a [H, W, D] volume, got shape {list(tensor.shape)}.")
    return tensor


class VolumeSSIM:
    """The 3-D SSIM of many volumes to one clean volume (skimage's definition, see the module docstring).

    The clean volume's window means and variances are computed here once (float64, 2 × 8 bytes per voxel kept); each
    call then sums three moments of the difference, chunk by chunk along the first axis, in float64. The clean
    volume must not change while the object is in use.

    Args:
        clean: ``[H, W, D]`` volume in [0, 1] (torch on any device, or numpy); every axis ≥ :data:`WINDOW`.

    Raises:
        ValueError: not a 3-D volume, or an axis shorter than :data:`WINDOW`.

    Example:
        >>> ssim = VolumeSSIM(clean)
        >>> [ssim(adversarial) for adversarial in candidates]
    """

    def __init__(self, clean: torch.Tensor | np.ndarray) -> None:
        clean = _as_tensor("clean", clean)
        if min(clean.shape) < WINDOW:
            raise ValueError(f"volume must be at least {WINDOW} voxels along every axis for 3-D SSIM, got "
                             f"{list(clean.shape)}.")
        self.shape = tuple(clean.shape)
        self._clean = clean
        device = clean.device
        valid = [size - WINDOW + 1 for size in self.shape]
        self._mean = torch.empty(valid, dtype=torch.float64, device=device)
        self._variance = torch.empty(valid, dtype=torch.float64, device=device)
        self._sums = _WindowSums(3, self.shape, torch.float64, device)
        for start in _chunks(self.shape[0]):
            x = self._planes(clean, start)
            mean, square = self._sums.means(torch.stack([x, x * x])).unbind(0)
            planes = slice(start, start + mean.shape[0])
            self._mean[planes] = mean
            self._variance[planes] = square.addcmul_(mean, mean, value=-1).mul_(_COV_NORM)

    def _planes(self, volume: torch.Tensor, start: int) -> torch.Tensor:
        """``volume``'s input planes of the chunk from output plane ``start``, float64 on the clean volume's device."""
        stop = min(start + _CHUNK, self.shape[0] - WINDOW + 1) + WINDOW - 1
        return volume[start:stop].to(self._clean.device, torch.float64)

    def __call__(self, adversarial: torch.Tensor | np.ndarray) -> float:
        """Mean 3-D SSIM of ``adversarial`` (``[H, W, D]``, the clean volume's shape, in [0, 1]) to the clean volume.

        Raises:
            ValueError: the shape differs from the clean volume's.
        """
        adversarial = _as_tensor("adversarial", adversarial)
        if tuple(adversarial.shape) != self.shape:
            raise ValueError(f"adversarial must be a [H, W, D] volume of the clean volume's shape {list(self.shape)}, "
                             f"got {list(adversarial.shape)}.")
        c1, c2 = _K1**2, _K2**2
        total = 0.0
        for start in _chunks(self.shape[0]):
            x = self._planes(self._clean, start)
            d = self._planes(adversarial, start).sub_(x)
            mean_d, cross, var_d = self._sums.means(torch.stack([d, d * x, d.square()])).unbind(0)
            planes = slice(start, start + mean_d.shape[0])
            ux, vx = self._mean[planes], self._variance[planes]
            cross.addcmul_(ux, mean_d, value=-1).mul_(_COV_NORM)  # cov(x, d)
            var_d.addcmul_(mean_d, mean_d, value=-1).mul_(_COV_NORM)  # σ_d²
            # skimage's A1·A2 / (B1·B2) with A1 = 2·μx·μy + C1, B1 = A1 + μd², A2 = 2·σxy + C2, B2 = A2 + σd²
            a1 = torch.add(ux, mean_d).mul_(ux).mul_(2).add_(c1)
            a2 = cross.add_(vx).mul_(2).add_(c2)
            b1 = mean_d.square_().add_(a1)
            b2 = var_d.add_(a2)
            total += float(a1.mul_(a2).div_(b1.mul_(b2)).sum())
        return total / self._mean.numel()


def volume_ssim(clean: torch.Tensor | np.ndarray, adversarial: torch.Tensor | np.ndarray) -> float:
    """Mean 3-D SSIM of two ``[H, W, D]`` volumes in [0, 1] (skimage's definition): ``VolumeSSIM(clean)(adversarial)``.

    Raises:
        ValueError: not 3-D volumes of one shape, or an axis shorter than :data:`WINDOW`.
    """
    return VolumeSSIM(clean)(adversarial)
