"""SA² (3D and slice-wise 2D): the budget's meaning, the update rule against a loop re-implementation, errors."""

from __future__ import annotations

import pytest
import torch
import torch_dct
from attack_helpers import make_unet, random_batch
from monai.data.utils import dense_patch_slices

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss, ssim3d
from SpectrumAttackLib.transforms import perturbation_mask, split_blocks_3d


def _interior_batch(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0.35, 0.65], so that a ρ = 0.2 perturbation never reaches the final [0, 1] clamp."""
    images, labels = random_batch(batch=2, size=size, seed=seed)
    return 0.35 + 0.3 * images, labels


def _split_loop(x: torch.Tensor, block: tuple[int, int, int]) -> torch.Tensor:
    """The reference's block split: one slice per block in ``dense_patch_slices`` order."""
    slices = dense_patch_slices(x.shape[2:], block, block)
    return torch.stack([x[(..., *s)] for s in slices], dim=2)


def _merge_loop(blocks: torch.Tensor, spatial: tuple[int, int, int], block: tuple[int, int, int]) -> torch.Tensor:
    out = torch.zeros(*blocks.shape[:2], *spatial, dtype=blocks.dtype)
    for n, s in enumerate(dense_patch_slices(spatial, block, block)):
        out[(..., *s)] = blocks[:, :, n]
    return out


def test_each_block_keeps_its_mean_and_the_relative_l2_budget():
    images, labels = _interior_batch()
    rho = 0.2
    result = attacks.create("saa", make_unet(), steps=3, rho=rho, block_size=(8, 8, 8), lambda_dice=1.0)(
        images, labels)
    adv = result.adversarial
    assert float(adv.min()) > 0 and float(adv.max()) < 1  # no clamping, so the bound is exact
    clean_blocks = split_blocks_3d(images, (8, 8, 8))
    adv_blocks = split_blocks_3d(adv, (8, 8, 8))
    torch.testing.assert_close(adv_blocks.mean((-3, -2, -1)), clean_blocks.mean((-3, -2, -1)), atol=1e-6, rtol=0)
    change = (adv_blocks - clean_blocks).flatten(3).norm(dim=-1)
    spread = (clean_blocks - clean_blocks.mean((-3, -2, -1), keepdim=True)).flatten(3).norm(dim=-1)
    assert bool((change <= rho * spread + 1e-5).all())
    assert float(change.max()) > 0.5 * rho * float(spread.min())  # the budget is actually used


@pytest.mark.parametrize(("name", "block"), [("saa", (8, 8, 8)), ("saa", (8, 4, 16)), ("saa-2d", (8, 4))])
@pytest.mark.parametrize("band", ["all", "low", "middle", "high"])
def test_factors_stay_in_the_box_with_dc_and_other_bands_at_one(name, block, band):
    images, labels = random_batch(size=16)
    rho = 0.3
    state = attacks.create(name, make_unet(), steps=2, rho=rho, block_size=block, freq_band=band)(
        images, labels).state
    mask = perturbation_mask(block, band)
    assert state.shape[-len(block) :] == block
    inside, outside = state[..., mask], state[..., ~mask]
    assert bool((outside == 1).all())
    assert float(inside.min()) >= 1 - rho - 1e-7 and float(inside.max()) <= 1 + rho + 1e-7
    assert bool((inside != 1).any())
    assert bool((state[(..., *([0] * len(block)))] == 1).all())  # DC factor is 1


def test_one_step_equals_a_loop_reimplementation_of_the_reference():
    """ξ₁ = clamp(ξ₀ + β·sign(∇ξ [λ_dice·DiceCE − λ_ssim·(1 − SSIM3D)]), 1 − ρ, 1 + ρ); output from ξ₁."""
    images, labels = random_batch(batch=1, size=16, seed=2)
    model = make_unet(1).eval()
    block, rho, beta, lam_dice, lam_ssim = (8, 8, 8), 0.3, 0.07, 0.5, 0.75
    xi0 = torch.empty(1, 1, 8, *block).uniform_(1 - rho, 1 + rho, generator=torch.Generator().manual_seed(9))
    attack = attacks.create("saa", model, steps=1, rho=rho, beta=beta, block_size=block, lambda_dice=lam_dice,
                            use_ssim_loss=True, lambda_ssim=lam_ssim, precision="fp32")
    result = attack(images, labels, init_state=xi0)

    # The reference, written as it is: loop split, torch_dct on x − 0.5, DC forced to 1, 0.5 added back.
    coefs = torch_dct.dct_3d(_split_loop(images, block) - 0.5, norm="ortho")
    dc = torch.zeros(block, dtype=torch.bool)
    dc[0, 0, 0] = True

    def render(xi: torch.Tensor) -> torch.Tensor:
        factors = torch.where(dc, torch.ones_like(xi), xi)
        return _merge_loop(torch_dct.idct_3d(coefs * factors, norm="ortho") + 0.5, (16, 16, 16), block)

    xi = xi0.clone().requires_grad_(True)
    adv = render(xi)
    for p in model.parameters():
        p.requires_grad_(False)
    loss = -lam_dice * dice_ce_loss()(model(adv), labels) + lam_ssim * (1 - ssim3d(images, adv))
    loss.backward()
    xi1 = (xi.detach() - beta * xi.grad.sign()).clamp(1 - rho, 1 + rho)
    expected = render(xi1).clamp(0, 1)
    torch.testing.assert_close(result.adversarial, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(result.state, torch.where(dc, torch.ones_like(xi1), xi1))
    assert result.history["loss"][0] == pytest.approx(-float(loss.detach()), rel=1e-4)


def test_beta_is_the_step_on_xi():
    images, labels = random_batch(batch=1)
    attack = attacks.create("saa", make_unet(), steps=1, rho=0.5, beta=0.05, block_size=(8, 8, 8))
    ones = torch.ones(1, 1, 8, 8, 8, 8)
    state = attack(images, labels, init_state=ones).state
    assert {round(v, 6) for v in torch.unique(state).tolist()} == {0.95, 1.0, 1.05}


def test_saa2d_ssim_term_compares_aligned_volumes():
    """With ξ = 1 the image is unchanged, so SSIM is 1 (the reference's transposed SSIM gave ≈ 0; §13 item 6)."""
    images, labels = random_batch(batch=1)
    attack = attacks.create("saa-2d", make_unet(), steps=1, block_size=(8, 8), use_ssim_loss=True)
    result = attack(images, labels, init_state=torch.ones(1, 1, 16, 4, 8, 8))
    assert result.history["ssim"][0] == pytest.approx(1.0, abs=1e-5)


def test_ssim_term_keeps_the_image_closer():
    images, labels = random_batch(batch=1)
    common = {"steps": 4, "rho": 0.5, "block_size": (8, 8, 8), "lambda_dice": 0.01}
    plain = attacks.create("saa", make_unet(), **common)(images, labels).adversarial
    gentle = attacks.create("saa", make_unet(), use_ssim_loss=True, lambda_ssim=10.0, **common)(
        images, labels).adversarial
    assert float(ssim3d(images, gentle)) > float(ssim3d(images, plain))


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"rho": 0.0}, "rho"),
        ({"rho": 1.0}, "rho"),
        ({"rho": -0.2}, "rho"),
        ({"beta": 0.0}, "beta"),
        ({"lambda_dice": 0.0}, "lambda_dice"),
        ({"lambda_ssim": -1.0}, "lambda_ssim"),
        ({"freq_band": "mid"}, "freq_band"),
        ({"block_size": (8, 8)}, "block_size"),
        ({"block_size": (8, 8, 1)}, "block_size"),
        ({"block_size": (8, 8, 8, 8)}, "block_size"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_parameters_raise(params, word):
    with pytest.raises(ValueError, match=word):
        attacks.create("saa", make_unet(), **params)


def test_2d_block_size_needs_two_entries_and_blocks_must_fit():
    with pytest.raises(ValueError, match="block_size"):
        attacks.create("saa-2d", make_unet(), block_size=(8, 8, 8))
    images, labels = random_batch(size=16)
    with pytest.raises(ValueError, match="block_size"):
        attacks.create("saa", make_unet(), block_size=(32, 8, 8))(images, labels)
