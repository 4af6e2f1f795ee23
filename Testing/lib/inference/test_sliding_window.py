"""Sliding-window prediction (no grad) and the differentiable SlidingWindowModel."""

from __future__ import annotations

import pytest
import torch
from inference_helpers import NUM_CLASSES, make_unet, phantom
from monai.inferers import sliding_window_inference
from torch import nn

from SpectrumAttackLib.attacks.base import forward_logits
from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.inference.sliding import (
    SlidingWindowModel,
    predict_logits,
    window_count,
)
from SpectrumAttackLib.precision import resolve_precision


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_single_window_equals_the_model_and_monai_bit_for_bit(unet, precision):
    """A volume of the window's size skips MONAI's blending buffers; its logits are MONAI's exactly."""
    images, _ = phantom((16, 16, 16))
    logits = predict_logits(unet, images, roi=16, precision=precision)
    unet.eval()
    with torch.no_grad():
        expected = unet(images)
        blended = sliding_window_inference(
            images, (16, 16, 16), 1, lambda x: forward_logits(unet, x, resolve_precision(precision, "cpu")))
    assert logits.shape == (1, NUM_CLASSES, 16, 16, 16) and logits.dtype == torch.float32
    assert torch.equal(logits, blended)
    if precision == "fp32":
        torch.testing.assert_close(logits, expected)


def test_predicted_classes_are_the_argmax_of_the_logits(unet):
    images, _ = phantom((20, 16, 16))
    classes = class_map(predict_logits(unet, images, roi=16, overlap=0.5, precision="fp32"))
    assert classes.shape == (1, 1, 20, 16, 16) and classes.dtype == torch.int64
    assert torch.equal(classes, predict_logits(unet, images, roi=16, overlap=0.5, precision="fp32").argmax(1, True))


def test_windows_without_overlap_tile_the_volume(unet):
    images, _ = phantom((32, 16, 16))
    logits = predict_logits(unet, images, roi=(16, 16, 16), overlap=0.0, precision="fp32")
    unet.eval()
    with torch.no_grad():
        halves = torch.cat([unet(images[:, :, :16]), unet(images[:, :, 16:])], dim=2)
    torch.testing.assert_close(logits, halves)


def test_eval_mode_restored_and_no_graph(unet):
    images, _ = phantom((20, 16, 16))
    images.requires_grad_(True)
    assert unet.training
    logits = predict_logits(unet, images, roi=16, overlap=0.5, sw_batch_size=2)
    assert unet.training
    assert not logits.requires_grad
    unet.eval()
    predict_logits(unet, images.detach(), roi=16)
    assert not unet.training


def test_volume_smaller_than_roi_is_padded_and_cropped(unet):
    images, _ = phantom((10, 16, 13))
    logits = predict_logits(unet, images, roi=16, precision="fp32")
    assert logits.shape == (1, NUM_CLASSES, 10, 16, 13)
    # MONAI pads evenly (3 + 3 along H, 1 + 2 along D) with zeros and crops the same voxels back
    padded = torch.nn.functional.pad(images, (1, 2, 0, 0, 3, 3))
    unet.eval()
    with torch.no_grad():
        expected = unet(padded)[:, :, 3:13, :, 1:14]
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_sliding_window_model_matches_prediction_and_passes_gradients(unet, overlap):
    images, _ = phantom((24, 20, 16))
    wrapped = SlidingWindowModel(unet, roi=16, overlap=overlap)
    x = images.clone().requires_grad_(True)
    out = wrapped(x)
    torch.testing.assert_close(out.detach(), predict_logits(unet, images, roi=16, overlap=overlap, precision="fp32"),
                               rtol=1e-5,
                               atol=1e-5)
    (grad,) = torch.autograd.grad(out[:, 1].sum(), x)
    assert grad.shape == x.shape
    assert bool((grad != 0).all())


def test_blended_gradient_of_a_pointwise_model():
    # A 1×1×1 convolution predicts every voxel from itself, so the blended (averaged) output equals the plain
    # output and d(sum of class k)/dx = w_k at every voxel, however many windows cover it.
    conv = nn.Conv3d(1, 2, kernel_size=1)
    images, _ = phantom((24, 20, 18))
    x = images.clone().requires_grad_(True)
    out = SlidingWindowModel(conv, roi=(16, 12, 10), overlap=0.5)(x)
    torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
    torch.testing.assert_close(grad, torch.full_like(x, float(conv.weight[0].item())))


@pytest.mark.parametrize(("shape", "roi", "overlap"), [
    ((24, 20, 16), (16, 16, 16), 0.5),
    ((40, 16, 9), (16, 8, 16), 0.25),
    ((33, 33, 33), (16, 16, 16), 0.0),
    ((17, 30, 12), (8, 10, 12), 0.6),
])
def test_window_count_counts_monai_windows(shape, roi, overlap):
    calls = []

    def predictor(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x

    sliding_window_inference(torch.zeros(1, 1, *shape), roi, 1, predictor, overlap=overlap)
    assert window_count(shape, roi, overlap) == len(calls)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"roi": (16, 16)}, "roi"),
    ({"roi": (16, 0, 16)}, "roi"),
    ({"overlap": 1.0}, "overlap"),
    ({"overlap": -0.1}, "overlap"),
    ({"sw_batch_size": 0}, "sw_batch_size"),
    ({"mode": "mean"}, "mode"),
])
def test_bad_arguments_are_named(kwargs, name):
    args = {"roi": 16, **kwargs}
    with pytest.raises(ValueError, match=name):
        predict_logits(make_unet(), torch.zeros(1, 1, 16, 16, 16), **args)
    with pytest.raises(ValueError, match=name):
        SlidingWindowModel(make_unet(), **args)


def test_images_must_be_5d_float(unet):
    with pytest.raises(ValueError, match="images"):
        predict_logits(unet, torch.zeros(1, 16, 16, 16), roi=16)
    with pytest.raises(ValueError, match="images"):
        predict_logits(unet, torch.zeros(1, 1, 16, 16, 16, dtype=torch.long), roi=16)
