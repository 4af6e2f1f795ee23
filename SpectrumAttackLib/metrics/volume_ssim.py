"""skimage's 3-D SSIM (uniform 7×7×7 window, sample covariance, data range 1) computed with torch box sums.

``skimage.metrics.structural_similarity(clean, adversarial, data_range=1.0)`` filters the five moments with
``scipy.ndimage.uniform_filter`` over the whole volume and then averages the SSIM map after cropping 3 voxels from
every side, i.e. exactly over the windows that lie inside the volume. Here those "valid" window sums are taken
directly (a running sum along each axis in turn and the difference of its ends), in float64 on the volumes'
device (:func:`window_sum_ssim`): equal to skimage to ~1e-12 (tests: 1e-10). :func:`volume_ssim` (what
``at_ssim`` measures every run with) uses it on a GPU, where an attack's volumes are, and skimage's own call on
the CPU, where ``bench/ssim_cost.py`` measured the window sums at 0.3–0.9× skimage's speed; so on a CPU the
search's SSIM is the reported number itself.
"""

from __future__ import annotations

import torch

__all__ = ["WINDOW", "volume_ssim", "window_sum_ssim"]

#: skimage's default window side.
WINDOW = 7
_K1, _K2 = 0.01, 0.03


def _window_means(x: torch.Tensor) -> torch.Tensor:
    """Mean over every 7×7×7 window inside each of ``x``'s volumes (``[M, H, W, D]`` → ``[M, H−6, W−6, D−6]``):
    per axis a running sum (float64) and the difference of its ends, two passes instead of seven."""
    for axis in range(1, 4):
        running = torch.cumsum(x, dim=axis)
        n = x.shape[axis] - WINDOW + 1
        head = running.narrow(axis, WINDOW - 1, n).clone()
        head.narrow(axis, 1, n - 1).sub_(running.narrow(axis, 0, n - 1))
        x = head
    return x / WINDOW**3


def volume_ssim(clean: torch.Tensor, adversarial: torch.Tensor) -> float:
    """Mean 3-D SSIM of two ``[H, W, D]`` volumes in [0, 1] (skimage's definition, see the module docstring):
    skimage's call on the CPU, :func:`window_sum_ssim` elsewhere.

    Raises:
        ValueError: shapes differ, or an axis is shorter than :data:`WINDOW`.
    """
    _check(clean, adversarial)
    if clean.device.type == "cpu" and adversarial.device.type == "cpu":
        from SpectrumAttackLib.metrics.similarity import ssim_volume

        return ssim_volume(clean.detach().numpy(), adversarial.detach().numpy())
    return window_sum_ssim(clean, adversarial)


def _check(clean: torch.Tensor, adversarial: torch.Tensor) -> None:
    if clean.shape != adversarial.shape or clean.dim() != 3:
        raise ValueError(f"adversarial must be a [H, W, D] volume of the clean volume's shape {list(clean.shape)}, "
                         f"got {list(adversarial.shape)}.")
    if min(clean.shape) < WINDOW:
        raise ValueError(f"volume must be at least {WINDOW} voxels along every axis for 3-D SSIM, got "
                         f"{list(clean.shape)}.")


def window_sum_ssim(clean: torch.Tensor, adversarial: torch.Tensor) -> float:
    """:func:`volume_ssim` computed with torch window sums in float64 on the volumes' device (any device).

    Raises:
        ValueError: shapes differ, or an axis is shorter than :data:`WINDOW`.
    """
    _check(clean, adversarial)
    x = clean.detach().to(torch.float64)
    y = adversarial.detach().to(torch.float64, copy=False)
    ux, uy, uxx, uyy, uxy = _window_means(torch.stack([x, y, x * x, y * y, x * y]))
    cov_norm = WINDOW**3 / (WINDOW**3 - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = _K1**2, _K2**2
    ssim = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(ssim.mean())
