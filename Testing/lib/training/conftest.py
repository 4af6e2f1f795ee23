"""Fixtures of the training tests: a tiny MONAI UNet and synthetic labelled volumes (two organs in noise)."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import UNet

NUM_CLASSES = 3


def make_case(seed: int, shape: tuple[int, int, int] = (16, 16, 16)) -> dict[str, torch.Tensor]:
    """One volume ``{"image": [1, H, W, D] in [0, 1], "label": [1, H, W, D]}``: two boxes of classes 1 and 2."""
    g = torch.Generator().manual_seed(seed)
    image = 0.1 * torch.rand(1, *shape, generator=g)
    label = torch.zeros(1, *shape)
    h, w, d = shape
    o = int(torch.randint(0, 3, (1,), generator=g))
    image[:, 2 + o : h // 2, 2 : w // 2, 2 : d - 2] += 0.8
    label[:, 2 + o : h // 2, 2 : w // 2, 2 : d - 2] = 1
    image[:, h // 2 + 1 : h - 2, w // 2 : w - 2 - o, 3 : d // 2] += 0.4
    label[:, h // 2 + 1 : h - 2, w // 2 : w - 2 - o, 3 : d // 2] = 2
    return {"image": image.clamp(0, 1), "label": label}


def make_model(seed: int = 0) -> UNet:
    """A 2-level MONAI UNet (4 and 8 channels), 3 classes, deterministic initial weights."""
    torch.manual_seed(seed)
    return UNet(spatial_dims=3, in_channels=1, out_channels=NUM_CLASSES, channels=(4, 8), strides=(2,),
                num_res_units=0)


@pytest.fixture
def tiny_model() -> UNet:
    return make_model()


@pytest.fixture(name="make_model")
def make_model_fixture():
    """The :func:`make_model` factory (tests build several identical models)."""
    return make_model


@pytest.fixture(name="make_case")
def make_case_fixture():
    """The :func:`make_case` factory."""
    return make_case


@pytest.fixture
def cases() -> list[dict[str, torch.Tensor]]:
    """Four synthetic volumes, 16³, without the batch axis."""
    return [make_case(i) for i in range(4)]


@pytest.fixture
def val_cases(cases) -> list[dict[str, torch.Tensor]]:
    """Two whole validation volumes with a batch axis of 1, 20×16×16 (not a multiple of the window)."""
    return [{k: v.unsqueeze(0) for k, v in make_case(10 + i, (20, 16, 16)).items()} for i in range(2)]
