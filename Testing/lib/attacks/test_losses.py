"""Objectives used by the attacks, and the Dice score the loop records."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_msssim import ssim

from SpectrumAttackLib.attacks.losses import (
    ReferenceSSIM,
    class_map,
    dice_ce_loss,
    ssim3d,
    ssim_blockwise,
    voxel_cross_entropy,
)
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.transforms import split_blocks_3d


def test_dice_ce_matches_the_reference_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, 6, generator=g)
    labels = torch.randint(0, 3, (2, 1, 4, 5, 6), generator=g)
    p = logits.softmax(1)
    onehot = F.one_hot(labels[:, 0], 3).movedim(-1, 1).float()
    dims = (2, 3, 4)
    dice = 1 - 2 * (p * onehot).sum(dims) / (p.pow(2).sum(dims) + onehot.pow(2).sum(dims) + 1e-6)
    expected = dice.mean() + F.cross_entropy(logits, labels[:, 0])
    torch.testing.assert_close(dice_ce_loss()(logits, labels), expected)


def test_voxel_cross_entropy_is_unreduced_ce():
    logits = torch.randn(2, 3, 4, 4, 4)
    labels = torch.randint(0, 3, (2, 1, 4, 4, 4))
    out = voxel_cross_entropy(logits, labels)
    assert out.shape == (2, 4, 4, 4)
    torch.testing.assert_close(out.mean(), F.cross_entropy(logits, labels[:, 0]))


@pytest.mark.parametrize("shape", [(2, 1, 20, 17, 9), (3, 2, 8, 8, 8), (4, 1, 9, 6)])
def test_ssim3d_equals_pytorch_msssim(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(7))
    y = (x + 0.3 * torch.rand(shape, generator=torch.Generator().manual_seed(8))).clamp(0, 1)
    expected = ssim(x, y, data_range=1, win_size=3, nonnegative_ssim=True)
    torch.testing.assert_close(ssim3d(x, y), expected, atol=1e-6, rtol=0)


def test_ssim3d_gradient():
    x = torch.rand(1, 1, 6, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    y = (x + 0.1).clamp(0, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda b: ssim3d(x, b), (y,))


def test_ssim3d_is_one_for_equal_volumes_and_axis_order_free():
    x = torch.rand(1, 1, 12, 10, 8, generator=torch.Generator().manual_seed(1))
    y = (x + 0.1 * torch.rand(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert float(ssim3d(x, x)) == pytest.approx(1.0)
    assert float(ssim3d(x, y)) == pytest.approx(float(ssim3d(x.permute(0, 1, 4, 2, 3), y.permute(0, 1, 4, 2, 3))))


def test_reference_ssim_equals_ssim3d_with_gradients_and_reuses_its_last_result():
    x = torch.rand(2, 1, 12, 9, 7, generator=torch.Generator().manual_seed(5))
    y = (x + 0.2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(6))).clamp(0, 1)
    reference = ReferenceSSIM(x)
    a = y.clone().requires_grad_(True)
    b = y.clone().requires_grad_(True)
    value = reference(a)
    torch.testing.assert_close(value, ssim3d(x, b), rtol=0, atol=1e-7)
    torch.testing.assert_close(torch.autograd.grad(value, a)[0], torch.autograd.grad(ssim3d(x, b), b)[0])
    assert reference(a) is value  # the history reuses the objective's computation
    assert reference(a.detach().clone()) is not value


@pytest.mark.parametrize("shape", [(2, 2, 6, 5, 7), (1, 1, 2, 6, 5), (3, 1, 7, 6)])
def test_reference_ssim_hand_written_gradient(shape):
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    y = (x + 0.2 * torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(11))).clamp(0, 1)
    assert torch.autograd.gradcheck(lambda b: ReferenceSSIM(x)(b), (y.requires_grad_(True),))


def test_reference_ssim_stacked_blurs_equal_autograd_on_a_96_cube_in_float32():
    """The stacked, in-place forward and backward (one blur of y, y², xy; one adjoint blur of the three partials)
    give the value and gradient of autograd through the plain formula on a volume of the attacks' size."""
    g = torch.Generator().manual_seed(13)
    x = torch.rand(1, 1, 96, 96, 96, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    a, b = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    value, expected = ReferenceSSIM(x)(a), ssim3d(x, b)
    torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
    (got,), (want,) = torch.autograd.grad(value, a), torch.autograd.grad(expected, b)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))  # float32 rounding


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_class_map_is_argmax_with_the_first_of_equal_maxima(dtype):
    g = torch.Generator().manual_seed(14)
    logits = torch.randn(2, 5, 6, 7, 8, generator=g).round().to(dtype)  # rounded: many ties between classes
    expected = logits.argmax(1, keepdim=True)
    assert (logits == logits.amax(1, keepdim=True)).sum(1).max() > 1  # the case has ties
    got = class_map(logits.requires_grad_(dtype != torch.bfloat16))
    assert got.dtype == torch.long and not got.requires_grad
    assert torch.equal(got, expected)
    many = torch.randn(1, 300, 2, 2, 2, generator=g)  # more classes than uint8 holds
    assert torch.equal(class_map(many), many.argmax(1, keepdim=True))
    logits = logits.detach().clone()
    logits[0, 2, 0, 0, 0] = float("nan")
    assert int(class_map(logits)[0, 0, 0, 0, 0]) == 4  # a NaN voxel gets the last class, never an invalid one


def test_reference_ssim_clips_negative_channels_to_zero():
    x = torch.rand(1, 2, 6, 6, 6, generator=torch.Generator().manual_seed(12))
    y = x.clone()
    y[:, 1] = 1 - x[:, 1]  # anti-correlated channel: negative SSIM, clipped to 0 as pytorch-msssim does
    y.requires_grad_(True)
    value = ReferenceSSIM(x)(y)
    torch.testing.assert_close(value, ssim(x, y.detach(), data_range=1, win_size=3, nonnegative_ssim=True),
                               atol=1e-6, rtol=0)
    (grad,) = torch.autograd.grad(value, y)
    assert float(grad[:, 1].abs().max()) == 0.0 and float(grad[:, 0].abs().max()) > 0.0


def test_ssim_blockwise_is_the_mean_of_per_block_ssim():
    x = torch.rand(2, 1, 8, 8, 16, generator=torch.Generator().manual_seed(3))
    y = (x + 0.2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    bx, by = split_blocks_3d(x, (4, 8, 8)), split_blocks_3d(y, (4, 8, 8))
    per_block = [ssim(bx[b, :, n][None], by[b, :, n][None], data_range=1, win_size=3, nonnegative_ssim=True)
                 for b in range(2) for n in range(bx.shape[2])]
    torch.testing.assert_close(ssim_blockwise(x, y, (4, 8, 8)), torch.stack(per_block).mean())
    slices = [ssim(x[..., d], y[..., d], data_range=1, win_size=3, nonnegative_ssim=True, size_average=False)
              for d in range(16)]  # 2D blocks as big as the slice: one 2D SSIM per slice and sample
    torch.testing.assert_close(ssim_blockwise(x, y, (8, 8)), torch.stack(slices).mean())


def test_dice_per_sample_skips_absent_classes_and_background():
    pred = torch.tensor([[0, 1, 1, 2], [0, 0, 0, 0]]).view(2, 1, 4, 1, 1)
    labels = torch.tensor([[0, 1, 2, 2], [0, 0, 0, 0]]).view(2, 1, 4, 1, 1)
    scores = dice_per_sample(pred, labels, 3)
    torch.testing.assert_close(scores, torch.tensor([(2 / 3 + 2 / 3) / 2, 1.0]))
    with_background = dice_per_sample(pred, labels, 3, include_background=True)
    torch.testing.assert_close(with_background[0], torch.tensor((1.0 + 2 / 3 + 2 / 3) / 3))
