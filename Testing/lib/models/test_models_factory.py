"""build_model: the seed's constructor settings on current MONAI, real forward passes, and argument errors."""

from __future__ import annotations

import pytest
import torch
from models_helpers import TINY_UNET, TINY_UNETR
from monai.networks.nets import UNETR, SwinUNETR, UNet

from SpectrumAttackLib.models import build_model


def test_seed_unet_settings():
    model = build_model("unet", 14)
    assert isinstance(model, UNet)
    assert tuple(model.channels) == (32, 64, 128, 256, 512) and tuple(model.strides) == (2, 2, 2, 2)
    assert model.num_res_units == 2 and model.out_channels == 14
    # seed-algorithms §8: 19.2 M parameters.
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(19.2e6, rel=0.01)


def test_seed_unetr_settings():
    model = build_model("unet-r", 14)
    assert isinstance(model, UNETR)
    keys = model.state_dict()
    # perceptron patch embedding (Rearrange + Linear), 12 ViT blocks of width 768, 216 patches of a 96³ tile
    assert tuple(keys["vit.patch_embedding.patch_embeddings.1.weight"].shape) == (768, 16**3)
    assert tuple(keys["vit.patch_embedding.position_embeddings"].shape) == (1, 216, 768)
    assert len(model.vit.blocks) == 12 and model.vit.blocks[0].attn.num_heads == 12
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(92.8e6, rel=0.01)


def test_tiny_unet_forward_shape():
    model = build_model("unet", 5, **TINY_UNET).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 16, 16, 16))
    assert out.shape == (2, 5, 16, 16, 16)


def test_unet_2d():
    model = build_model("unet", 4, spatial_dims=2, channels=(4, 8), strides=(2,)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 16, 16)).shape == (1, 4, 16, 16)


@pytest.mark.parametrize(
    "embedding, key", [("perceptron", "patch_embeddings.1.weight"), ("conv", "patch_embeddings.weight")]
)
def test_unetr_embeddings_and_forward(embedding, key):
    model = build_model("unet-r", 3, pos_embed=embedding, **TINY_UNETR).eval()
    assert f"vit.patch_embedding.{key}" in model.state_dict()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 32, 32, 32)).shape == (1, 3, 32, 32, 32)


def test_monai_aliases_proj_type_and_img_size():
    arguments = {k: v for k, v in TINY_UNETR.items() if k != "roi"}
    model = build_model("unet-r", 3, proj_type="conv", img_size=(32, 32, 48), **arguments)
    assert "vit.patch_embedding.patch_embeddings.weight" in model.state_dict()
    assert model.vit.patch_embedding.position_embeddings.shape[1] == 2 * 2 * 3


def test_swin_unetr_feature_size_12_forward():
    torch.manual_seed(0)
    model = build_model("swin-unetr", 3, feature_size=12, roi=(64, 64, 64)).eval()
    assert isinstance(model, SwinUNETR)
    with torch.no_grad():
        assert model(torch.rand(1, 1, 64, 64, 64)).shape == (1, 3, 64, 64, 64)


@pytest.mark.parametrize(
    "architecture, kwargs, name",
    [
        ("unet-rr", {}, "architecture"),
        ("unet", {"num_classes": 0}, "num_classes"),
        ("swin-unetr", {"feature_size": 16}, "feature_size"),
        ("swin-unetr", {"feature_size": 12, "roi": (32, 32, 32)}, "roi"),
        ("swin-unetr", {"feature_size": 12, "roi": (96, 96, 80)}, "roi"),
        ("unet-r", {**TINY_UNETR, "hidden_size": 25}, "hidden_size"),
        ("unet-r", {**TINY_UNETR, "roi": (32, 32, 40)}, "roi"),
        ("unet-r", {**TINY_UNETR, "pos_embed": "learned"}, "pos_embed"),
        ("unet-r", {**TINY_UNETR, "pos_embed": "conv", "proj_type": "perceptron"}, "proj_type"),
        ("unet", {"channels": (4, 8, 16), "strides": (2,)}, "strides"),
        ("unet", {"channels": (4, 0), "strides": (2,)}, "channels"),
        ("unet", {"dropout_rate": 1.5}, "dropout_rate"),
        ("unet", {"in_channels": 0}, "in_channels"),
        ("unet", {"spatial_dims": 4}, "spatial_dims"),
    ],
)
def test_bad_arguments_name_the_parameter(architecture, kwargs, name):
    kwargs = dict(kwargs)
    num_classes = kwargs.pop("num_classes", 3)
    with pytest.raises(ValueError, match=name):
        build_model(architecture, num_classes, **kwargs)
