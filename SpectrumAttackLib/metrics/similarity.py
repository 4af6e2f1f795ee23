"""Image-similarity scores between a clean and an adversarial volume: SSIM, PSNR and LPIPS.

Two SSIM definitions are offered because the reference and a volumetric reading disagree:

* :func:`ssim_axial_mean` is the reference's number (seed-algorithms §11): ``skimage`` SSIM of the volumes
  scaled by 255 with the axial axis as ``channel_axis``, i.e. the mean 2D SSIM over axial slices, 7×7 uniform
  window, ``data_range=255``.
* :func:`ssim_volume` is a true 3D SSIM: ``skimage``'s definition on the whole volume (its default 7×7×7 uniform
  window, sample covariance, ``data_range=1``), computed by :mod:`SpectrumAttackLib.metrics.volume_ssim` (equal to
  skimage's call to ~1e-15, several times faster; ``bench/ssim_cost.py``), the number ``at_ssim``'s search uses too.
  (This is not the attack's in-loop ``ssim3d`` of :mod:`SpectrumAttackLib.attacks.losses`, a 3-tap Gaussian kept
  for the SA² objective; reporting uses the standard 7-window definition.)

LPIPS needs the optional ``lpips`` package and the AlexNet backbone weights of ``torchvision`` already in the
torch hub cache; nothing is ever downloaded. Without them the score is reported as unavailable, with the reason.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from SpectrumAttackLib.metrics.volume_ssim import volume_ssim

__all__ = [
    "SSIM_WINDOW",
    "load_default_lpips",
    "lpips_availability",
    "lpips_distance",
    "psnr",
    "ssim_axial_mean",
    "ssim_volume",
]

SSIM_WINDOW = 7
"""Side of skimage's default uniform SSIM window, used by both SSIM definitions."""

_ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"  # the file torchvision's AlexNet_Weights.IMAGENET1K_V1 downloads
_LPIPS_CHUNK = 32  # axial slices per LPIPS forward pass (bounds memory on large volumes)

LpipsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ssim_axial_mean(clean: np.ndarray, adversarial: np.ndarray) -> float:
    """The reference's SSIM: mean 2D SSIM over axial slices, on the 0–255 scale.

    Args:
        clean, adversarial: ``[H, W, D]`` float volumes in [0, 1]; D is the axial axis. H and W must be at least
            :data:`SSIM_WINDOW`.
    """
    return float(
        structural_similarity(
            clean.astype(np.float64) * 255.0,
            adversarial.astype(np.float64) * 255.0,
            channel_axis=2,
            data_range=255.0,
        )
    )


def ssim_volume(clean: np.ndarray, adversarial: np.ndarray) -> float:
    """3D SSIM of two ``[H, W, D]`` volumes in [0, 1]: skimage's uniform 7×7×7 window, ``data_range=1``
    (:func:`~SpectrumAttackLib.metrics.volume_ssim.volume_ssim`).

    Every axis must be at least :data:`SSIM_WINDOW` long.
    """
    return volume_ssim(clean, adversarial)


def psnr(clean: np.ndarray, adversarial: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over the whole volume, peak = 1 for [0, 1] intensities.

    Identical to the reference's ``peak_signal_noise_ratio(vol·255, adv·255, data_range=255)`` (PSNR does not
    depend on the scale). Returns ``inf`` for identical volumes; callers decide how to report that.
    """
    mse = float(np.mean((clean.astype(np.float64) - adversarial.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def lpips_availability() -> tuple[bool, str]:
    """Whether the default LPIPS (AlexNet) can be built without network access, and why not.

    Returns:
        ``(True, "ok")``, or ``(False, reason)`` naming the missing package or weights file.
    """
    for package in ("lpips", "torchvision"):
        if importlib.util.find_spec(package) is None:
            return False, f"the '{package}' package is not installed"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_WEIGHTS
    if not weights.is_file():
        return False, f"torchvision AlexNet weights not in the torch hub cache ({weights}); they are never downloaded"
    return True, "ok"


@lru_cache(maxsize=4)
def load_default_lpips(device: str = "cpu") -> LpipsModel:
    """``lpips.LPIPS(net="alex")`` in eval mode on ``device``, built once per device.

    Raises:
        RuntimeError: :func:`lpips_availability` says it cannot be built offline.
    """
    available, reason = lpips_availability()
    if not available:
        raise RuntimeError(f"LPIPS is unavailable: {reason}.")
    import lpips  # optional dependency, checked above

    model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)
    model.requires_grad_(False)
    return model


def lpips_distance(clean: np.ndarray, adversarial: np.ndarray, model: LpipsModel) -> float:
    """Mean LPIPS distance over axial slices (lower = more similar), as the reference computes it.

    Each axial slice becomes a ``[1, H, W]`` image scaled to [−1, 1] and repeated to 3 channels (the reference
    relies on LPIPS broadcasting one channel to three, which gives the same input). The papers report
    ``1 − distance``.

    Args:
        clean, adversarial: ``[H, W, D]`` float volumes in [0, 1].
        model: a callable ``model(x0, x1) -> [N, 1, 1, 1]`` distance on ``[N, 3, H, W]`` images in [−1, 1],
            e.g. an ``lpips.LPIPS`` instance. Inputs go to the device of its first parameter (CPU if none).
    """
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    device = params[0].device if params else torch.device("cpu")

    def slices(volume: np.ndarray) -> torch.Tensor:  # [H, W, D] → [D, 3, H, W] in [-1, 1]
        x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)).permute(2, 0, 1).unsqueeze(1)
        return (x * 2.0 - 1.0).expand(-1, 3, -1, -1)

    x0, x1 = slices(clean), slices(adversarial)
    total = 0.0
    with torch.no_grad():
        for start in range(0, x0.shape[0], _LPIPS_CHUNK):
            chunk = slice(start, start + _LPIPS_CHUNK)
            dist = model(x0[chunk].to(device).contiguous(), x1[chunk].to(device).contiguous())
            total += float(dist.double().sum())
    return total / x0.shape[0]
