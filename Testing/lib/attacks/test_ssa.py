"""SSA-2D against its definition: views, averaged input gradient, sign step ε/steps, L∞ projection; the layout fix."""

from __future__ import annotations

import pytest
import torch
import torch_dct
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.runtime import make_generator
from SpectrumAttackLib.transforms import dct_nd, split_blocks_2d


def _frozen(seed: int = 1) -> torch.nn.Module:
    model = make_unet(seed).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _reference_view(x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, block: int) -> torch.Tensor:
    """One spectrum augmentation written the reference's way (slices first, loop over blocks, torch-dct).

    ``mask`` is in our block layout ``[B, C, D, N2, b, b]`` (row-major block grid over (H, W)).
    """
    v = ((x + noise) * 255).permute(0, 1, 4, 2, 3)  # [B, C, D, H, W], each axial slice
    out = torch.empty_like(v)
    h, w = v.shape[3:]
    n = 0
    for i in range(0, h, block):
        for j in range(0, w, block):
            coefs = torch_dct.dct_2d(v[..., i:i + block, j:j + block] - 128, norm="ortho")
            out[..., i:i + block, j:j + block] = torch_dct.idct_2d(coefs * mask[:, :, :, n], norm="ortho") + 128
            n += 1
    return out.permute(0, 1, 3, 4, 2) / 255


def test_two_steps_equal_the_definition():
    """x_{t+1} = Π(x_t + ε/T·sign(mean_j ∇ℓ(x̃_j))), x̃_j the views of x_t; history scores x_t itself."""
    images, labels = random_batch(batch=1, size=16, seed=3)
    model = _frozen()
    eps, rho, augs, steps, block = 12.0, 0.5, 3, 2, 8
    result = attacks.create("ssa-2d", model, eps=eps, rho=rho, num_spectrum_augs=augs, steps=steps,
                            block_size=(block, block), seed=7)(images, labels)

    loss = dice_ce_loss()
    radius, alpha = eps / 255, eps / 255 / steps
    generator = make_generator(7)
    x = images.clone()
    values = []
    for _ in range(steps):
        values.append(float(loss(model(x), labels)))
        total = torch.zeros_like(x)
        for _ in range(augs):
            noise = torch.randn(x.shape, generator=generator) * radius
            mask = torch.rand((1, 1, 16, 4, block, block), generator=generator) * (2 * rho) + (1 - rho)
            view = _reference_view(x, noise, mask, block).requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(model(view), labels), view)
            total += grad
        x = x + alpha * (total / augs).sign()
        x = torch.minimum(torch.maximum(x, (images - radius).clamp(0, 1)), (images + radius).clamp(0, 1))
    torch.testing.assert_close(result.adversarial, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.state, x - images, atol=1e-5, rtol=0)
    assert result.history["loss"] == pytest.approx(values, abs=1e-5)


def test_views_keep_the_layout_of_the_image_for_any_shape():
    """The reference re-permuted its image inside the loop over views (§13 item 15): from the second view on the
    slices ran along another axis. Here, with no noise and no spectral scaling, every view is the image itself."""
    images = torch.rand(1, 1, 16, 12, 8, generator=torch.Generator().manual_seed(0))
    attack = attacks.create("ssa-2d", make_unet(), eps=0.0, rho=0.0, num_spectrum_augs=3, block_size=(4, 6))
    views = list(attack.views(images, None, make_generator(0)))
    assert len(views) == 3
    for view in views:
        torch.testing.assert_close(view, images, atol=2e-6, rtol=0)


def test_the_mask_scales_every_coefficient_of_the_centred_slices_dc_included():
    images = torch.rand(1, 1, 16, 16, 4, generator=torch.Generator().manual_seed(1))
    rho = 0.3
    attack = attacks.create("ssa-2d", make_unet(), eps=0.0, rho=rho, num_spectrum_augs=1, block_size=(8, 8))
    (view,) = attack.views(images, None, make_generator(0))
    clean = dct_nd(split_blocks_2d(images * 255 - 128, (8, 8)), 2)
    seen = dct_nd(split_blocks_2d(view * 255 - 128, (8, 8)), 2)
    usable = clean.abs() > 1.0
    ratio = seen[usable] / clean[usable]
    assert float(ratio.min()) >= 1 - rho - 1e-3 and float(ratio.max()) <= 1 + rho + 1e-3
    assert float(ratio.std()) > 0.1  # drawn per coefficient, spread over the box
    dc = (seen[..., 0, 0] / clean[..., 0, 0])
    assert float((dc - 1).abs().max()) > 0.05  # DC is scaled too (unlike SA²)


def test_budget_step_size_and_cost_per_step():
    images, labels = random_batch(batch=1, size=16)
    model = make_unet()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    attack = attacks.create("ssa-2d", model, eps=8.0, steps=4, num_spectrum_augs=3, block_size=(8, 8))
    assert attack.alpha == pytest.approx(8 / 255 / 4)
    result = attack(images, labels)
    assert len(calls) == 4 * (3 + 1)  # views with gradient + one scoring pass per step
    delta = result.adversarial - images
    assert float(delta.abs().max()) <= 8 / 255 + 1e-6
    assert float(result.adversarial.min()) >= 0 and float(result.adversarial.max()) <= 1


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"num_spectrum_augs": 0}, "num_spectrum_augs"),
        ({"rho": 1.0}, "rho"),
        ({"rho": -0.1}, "rho"),
        ({"eps": -1.0}, "eps"),
        ({"block_size": (8, 8, 8)}, "block_size"),
        ({"alpha": 0.01}, "alpha"),
        ({"random_start": True}, "random_start"),
    ],
)
def test_bad_parameters_raise(params, word):
    with pytest.raises(ValueError, match=word):
        attacks.create("ssa-2d", make_unet(), **params)

