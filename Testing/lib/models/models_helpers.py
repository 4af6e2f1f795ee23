"""Tiny real MONAI networks and catalogue entries shared by the model tests."""

from __future__ import annotations

import torch

from SpectrumAttackLib.models import build_model

#: A 3-level UNet small enough for every test (about 10 k parameters).
TINY_UNET = {"channels": (4, 8, 16), "strides": (2, 2), "num_res_units": 1}
#: A UNETR with a 2-head, 24-wide ViT on 32³ tiles.
TINY_UNETR = {"roi": (32, 32, 32), "feature_size": 4, "hidden_size": 24, "mlp_dim": 48, "num_heads": 2}


def tiny_unet(num_classes: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("unet", num_classes, **TINY_UNET).eval()


def tiny_unetr(num_classes: int = 3, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("unet-r", num_classes, **{**TINY_UNETR, **overrides}).eval()


def catalogue_entry(name: str, weights: str, sha256: str = "", num_classes: int = 3) -> dict:
    """A catalogue entry for a tiny UNet in the models.json schema."""
    return {
        "name": name,
        "architecture": "unet",
        "arguments": {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_UNET.items()},
        "num_classes": num_classes,
        "classes": [{"id": i, "name": f"organ {i}", "rgb": [10 * i, 20, 30]} for i in range(num_classes)],
        "preprocessing": {
            "orientation": "RAS",
            "spacing_mm": [2.0, 2.0, 2.0],
            "a_min": -100,
            "a_max": 200,
            "b_min": 0,
            "b_max": 1,
            "roi": [16, 16, 16],
        },
        "weights": weights,
        "sha256": sha256,
        "provenance": "made by the test",
        "clean_dice": {"organ 1": 0.5},
        "description": "tiny",
    }
