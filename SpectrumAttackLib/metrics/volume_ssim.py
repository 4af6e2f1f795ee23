"""skimage's 3-D SSIM (uniform 7×7×7 window, sample covariance, data range 1) computed with torch box sums.

``skimage.metrics.structural_similarity(clean, adversarial, data_range=1.0)`` filters the five moments with
``scipy.ndimage.uniform_filter`` over the whole volume and then averages the SSIM map after cropping 3 voxels from
every side, i.e. exactly over the windows that lie inside the volume. Here those "valid" window sums are taken
directly (a sliding sum of 7 along each axis in turn), in float64 on the volumes' device: equal to skimage to
~1e-12 and several times faster, which matters where the audit reports it for every cell and ``at_ssim`` measures
it after every attack run.
"""

from __future__ import annotations

import torch

__all__ = ["WINDOW", "volume_ssim"]

#: skimage's default window side.
WINDOW = 7
_K1, _K2 = 0.01, 0.03


def _window_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every 7×7×7 window inside ``x`` (``[H, W, D]`` → ``[H−6, W−6, D−6]``)."""
    for axis in range(3):
        n = x.shape[axis] - WINDOW + 1
        total = x.narrow(axis, 0, n).clone()
        for shift in range(1, WINDOW):
            total += x.narrow(axis, shift, n)
        x = total
    return x / WINDOW**3


def volume_ssim(clean: torch.Tensor, adversarial: torch.Tensor) -> float:
    """Mean 3-D SSIM of two ``[H, W, D]`` volumes in [0, 1] (skimage's definition, see the module docstring).

    Raises:
        ValueError: shapes differ, or an axis is shorter than :data:`WINDOW`.
    """
    if clean.shape != adversarial.shape or clean.dim() != 3:
        raise ValueError(f"adversarial must be a [H, W, D] volume of the clean volume's shape {list(clean.shape)}, "
                         f"got {list(adversarial.shape)}.")
    if min(clean.shape) < WINDOW:
        raise ValueError(f"volume must be at least {WINDOW} voxels along every axis for 3-D SSIM, got "
                         f"{list(clean.shape)}.")
    x = clean.detach().to(torch.float64)
    y = adversarial.detach().to(torch.float64, copy=False)
    ux, uy = _window_mean(x), _window_mean(y)
    cov_norm = WINDOW**3 / (WINDOW**3 - 1)
    vx = cov_norm * (_window_mean(x * x) - ux * ux)
    vy = cov_norm * (_window_mean(y * y) - uy * uy)
    vxy = cov_norm * (_window_mean(x * y) - ux * uy)
    c1, c2 = _K1**2, _K2**2
    ssim = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(ssim.mean())
