"""Shared test set-up: the repository root on ``sys.path``, the markers, and one fitted tiny network.

``fitted_net`` is a small MONAI UNet trained for a few dozen steps on synthetic volumes with two blob classes, so
that its clean prediction is meaningful and "the attack lowers Dice" is a real test. It is built once per session
(a few seconds on one CPU thread) without touching the global RNG. Sub-folders keep their own fixtures in their
own ``conftest.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MARKERS = {
    "slow": "takes more than a few seconds",
    "gpu": "needs CUDA",
    "slicer": "needs slicer-core",
    "data": "needs the sample data",
}

#: Classes of the fitted net (background + two blobs) and the edge of its cubic training volumes.
FITTED_CLASSES = 3
FITTED_SIZE = 24


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def blob_volume(seed: int, size: int = FITTED_SIZE) -> tuple[Any, Any]:
    """``images [1, 1, s, s, s]`` in [0, 1] and ``labels [1, 1, s, s, s]`` int64: two balls of classes 1 and 2.

    Class 1 is bright (≈ 0.8), class 2 mid-grey (≈ 0.5), background dark (≈ 0.2), plus uniform noise of ±0.05.
    Centres and radii are drawn from a generator seeded with ``seed``.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3, indexing="ij"))
    images = torch.full((size, size, size), 0.2)
    labels = torch.zeros((size, size, size), dtype=torch.long)
    for cls, level in ((1, 0.8), (2, 0.5)):
        centre = size * (0.25 + 0.5 * torch.rand(3, 1, 1, 1, generator=g))
        radius = size * (0.15 + 0.1 * float(torch.rand(1, generator=g)))
        inside = ((grid - centre) ** 2).sum(0) <= radius**2
        images[inside] = level
        labels[inside] = cls
    images = images + 0.1 * (torch.rand(images.shape, generator=g) - 0.5)
    return images.clamp(0, 1)[None, None], labels[None, None]


@dataclass(frozen=True)
class FittedNet:
    """A tiny UNet fitted to :func:`blob_volume` data, and two held-out cases.

    Attributes:
        model: MONAI UNet, channels (4, 8, 16), strides (2, 2), 3 classes, in eval mode.
        images: ``[2, 1, 24, 24, 24]`` held-out volumes in [0, 1].
        labels: ``[2, 1, 24, 24, 24]`` their ground truth.
        clean_pred: ``[2, 1, 24, 24, 24]`` the model's clean prediction (argmax).
        num_classes: 3.
    """

    model: Any
    images: Any
    labels: Any
    clean_pred: Any
    num_classes: int


def fit_tiny_unet(steps: int = 150, seed: int = 0) -> FittedNet:
    """Train the tiny UNet with Adam (lr 0.01) on DiceCE, a fresh pair of synthetic volumes per step; deterministic.

    Held-out foreground Dice is about 0.93 (a few seconds on one CPU thread). The weights are the same from run to
    run on one machine, not across machines: the float rounding of the convolution kernels differs with the CPU's
    instruction set (AVX2, AVX-512, AMX) and 150 Adam steps amplify it. Tests built on this net must assert
    properties with a clear margin, never exact counts or near-ties.
    """
    torch = pytest.importorskip("torch")
    from monai.networks.nets import UNet

    from SpectrumAttackLib.attacks.losses import dice_ce_loss

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UNet(spatial_dims=3, in_channels=1, out_channels=FITTED_CLASSES, channels=(4, 8, 16),
                     strides=(2, 2), num_res_units=1)
    loss_fn = dice_ce_loss()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    # One thread while fitting: reductions split over threads round differently, and the fitted weights (hence
    # every test built on them) must not depend on the machine's core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            batch = [blob_volume(1000 + 2 * step + i) for i in range(2)]
            optimiser.zero_grad()
            loss_fn(model(torch.cat([a for a, _ in batch])), torch.cat([b for _, b in batch])).backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    held_out = [blob_volume(i) for i in range(2)]
    images = torch.cat([a for a, _ in held_out])
    labels = torch.cat([b for _, b in held_out])
    with torch.no_grad():
        clean_pred = model(images).argmax(1, keepdim=True)
    return FittedNet(model, images, labels, clean_pred, FITTED_CLASSES)


@pytest.fixture(scope="session")
def fitted_net() -> FittedNet:
    """The session's :class:`FittedNet` (tests that change its mode or flags must restore them)."""
    return fit_tiny_unet()


@pytest.fixture(scope="session")
def nnunet_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real nnU-Net v2 trained-model folder built with nnU-Net's own tools from the sample CT (see
    ``nnunet_helpers``; about a minute, once per session). Skipped when the ``nnunet`` extra or the sample data is
    missing."""
    pytest.importorskip("nnunetv2", reason="the nnunet extra is not installed (pip install 'SpectrumAttack[nnunet]')")
    pytest.importorskip("dynamic_network_architectures", reason="the nnunet extra is not installed")
    from nnunet_helpers import build_model_folder

    from SpectrumAttackLib.data.sample_data import ensure_sample_data

    try:
        sample = ensure_sample_data()
    except RuntimeError as error:
        pytest.skip(f"sample data unavailable: {error}")
    return build_model_folder(tmp_path_factory.mktemp("nnunet"), sample)


@pytest.fixture(scope="session")
def nnunet_ct(nnunet_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Crops of the sample CTs as NIfTI files, sized for the test model's 40×56×64 patch: ``image`` / ``labels``
    (img0001 at 3 mm, 80×56×40: two windows, no resampling), ``small`` / ``small_labels`` (64×56×40 of the same:
    one window, for the attack tests) and ``resampled`` (img0003 at 0.98×0.98×2 mm, 120×100×20: resampled to 3 mm,
    one window)."""
    from nnunet_helpers import write_crop

    from SpectrumAttackLib.data.sample_data import ensure_sample_data

    sample = ensure_sample_data()
    out = tmp_path_factory.mktemp("nnunet-ct")
    return {
        "image": write_crop(sample / "imagesTr/img0001.nii.gz", out / "image.nii.gz", NNUNET_CROP),
        "labels": write_crop(sample / "labelsTr/label0001.nii.gz", out / "labels.nii.gz", NNUNET_CROP),
        "small": write_crop(sample / "imagesTr/img0001.nii.gz", out / "small.nii.gz", NNUNET_SMALL_CROP),
        "small_labels": write_crop(sample / "labelsTr/label0001.nii.gz", out / "small_labels.nii.gz",
                                   NNUNET_SMALL_CROP),
        "resampled": write_crop(sample / "imagesTr/img0003.nii.gz", out / "resampled.nii.gz", NNUNET_RESAMPLED_CROP),
    }


#: crops of the nnU-Net test images (see ``nnunet_ct``).
NNUNET_CROP = (slice(20, 100), slice(30, 86), slice(50, 90))
NNUNET_SMALL_CROP = (slice(20, 84), slice(30, 86), slice(50, 90))
NNUNET_RESAMPLED_CROP = (slice(200, 320), slice(180, 280), slice(None))
