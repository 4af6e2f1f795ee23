"""VAFA (3D and 2D): soft rounding, α schedule, both variants against a loop re-implementation, reuse, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch_dct
from attack_helpers import make_unet, random_batch
from monai.data.utils import dense_patch_slices
from pytorch_msssim import ssim

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss, ssim3d
from SpectrumAttackLib.attacks.vafa import renormalise_slices, soft_round
from SpectrumAttackLib.metrics.overlap import dice_per_sample


def _phi(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """φ_α as written in the reference (``attacks/vafa/utils.py::phi_diff``)."""
    k = math.log(2 / alpha - 1)
    s = 1 / (1 - alpha)
    return torch.floor(u) + 0.5 * (1 + s * torch.tanh(k * (u - torch.floor(u) - 0.5)))


def test_soft_round_is_continuous_and_tends_to_rounding():
    u = torch.tensor([-1.5, -0.3, 0.0, 0.2, 0.5, 0.7, 2.0, 3.49], dtype=torch.float64)
    torch.testing.assert_close(soft_round(u, 0.1), _phi(u, 0.1))
    for n in (-2.0, 0.0, 3.0):
        below, above = soft_round(torch.tensor([n - 1e-9, n + 1e-9], dtype=torch.float64), 0.1)
        assert float(above - below) == pytest.approx(0.0, abs=1e-6)
    near = torch.tensor([0.05, 0.95, 1.02, 2.97])
    torch.testing.assert_close(soft_round(near, 1e-6), near.round(), atol=1e-3, rtol=0)
    assert float(soft_round(torch.tensor(0.5), 0.1)) == pytest.approx(0.5)


def test_alpha_anneals_from_0_1_and_never_reaches_zero():
    attack = attacks.create("vafa-3d", make_unet(), steps=20)
    alphas = [attack.alpha_at(t) for t in range(20)]
    assert alphas[0] == pytest.approx(0.1) and alphas[-1] == pytest.approx(0.1 / 20)
    assert all(a > 0 for a in alphas) and alphas == sorted(alphas, reverse=True)


def test_reused_object_gives_the_same_finite_result():
    """The reference kept α on the object and ended slightly negative: a second call gave NaN (§13 item 10)."""
    images, labels = random_batch()
    attack = attacks.create("vafa-3d", make_unet(), steps=3, block_size=(8, 8, 8))
    before = dict(vars(attack))
    first = attack(images, labels).adversarial
    second = attack(images, labels).adversarial
    assert torch.isfinite(second).all() and torch.equal(first, second)
    assert vars(attack) == before


def _split_loop(x, block):
    return torch.stack([x[(..., *s)] for s in dense_patch_slices(x.shape[2:], block, block)], dim=2)


def _merge_loop(blocks, spatial, block):
    out = torch.zeros(*blocks.shape[:2], *spatial, dtype=blocks.dtype)
    for n, s in enumerate(dense_patch_slices(spatial, block, block)):
        out[(..., *s)] = blocks[:, :, n]
    return out


def test_code_variant_equals_a_loop_reimplementation_of_the_reference():
    """Two steps of the reference VAFA-3D (q from q_max, step 1, clamp [5, q_max], renormalised slices, SSIM)."""
    images, labels = random_batch(batch=1, size=16, seed=5)
    images = 0.2 + 0.6 * images
    model = make_unet(2).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    block, q_max, steps = (8, 8, 8), 30.0, 2
    result = attacks.create("vafa-3d", model, steps=steps, q_max=q_max, block_size=block, use_ssim_loss=True)(
        images, labels)

    coefs = torch_dct.dct_3d(_split_loop(images * 255, block) - 128, norm="ortho")

    def render(q: torch.Tensor, alpha: float) -> torch.Tensor:
        v = _merge_loop(torch_dct.idct_3d(_phi(coefs / q, alpha) * q, norm="ortho") + 128, (16, 16, 16), block)
        low = v.amin(dim=(2, 3), keepdim=True)
        return (v - low) / (v.amax(dim=(2, 3), keepdim=True) - low)

    def blockwise_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bx = _split_loop(x, block).permute(2, 0, 1, 5, 3, 4)[:, :, 0]  # [N, B, bd, bh, bw]
        by = _split_loop(y, block).permute(2, 0, 1, 5, 3, 4)[:, :, 0]
        return ssim(bx, by, data_range=1, win_size=3, nonnegative_ssim=True)

    q = torch.full((1, 1, 8, *block), q_max)
    for t in range(steps):
        alpha = 0.1 - t * 0.1 / steps
        q = q.requires_grad_(True)
        adv = render(q, alpha)
        loss = -dice_ce_loss()(model(adv), labels) + (1 - blockwise_ssim(images, adv))
        (grad,) = torch.autograd.grad(loss, q)
        q = (q.detach() - grad.sign()).clamp(5, q_max)
    expected = render(q, 0.1 - (steps - 1) * 0.1 / steps).clamp(0, 1)
    torch.testing.assert_close(result.state, q)
    torch.testing.assert_close(result.adversarial, expected, atol=1e-4, rtol=0)
    # The reference returns the image of its last forward pass (q after steps − 1 updates): the image our
    # history scores last, one update short of ours.
    reference_image = adv.detach().clamp(0, 1)
    assert not torch.allclose(reference_image, result.adversarial, atol=1e-3)
    pred = model(reference_image).argmax(1, keepdim=True)
    assert result.history["dice"][-1] == pytest.approx(float(dice_per_sample(pred, labels, 3).mean()), abs=1e-6)
    assert result.history["ssim"][-1] == pytest.approx(float(ssim3d(images, reference_image)), abs=1e-5)


@pytest.mark.parametrize("name", ["vafa-3d", "vafa-2d"])
def test_code_variant_table_is_integer_in_bounds_and_slices_span_0_to_1(name):
    images, labels = random_batch(size=16)
    images = 0.2 + 0.6 * images  # [0.2, 0.8]: the renormalisation stretches it to [0, 1]
    block = (8, 8, 8) if name == "vafa-3d" else (8, 8)
    result = attacks.create(name, make_unet(), steps=4, q_max=12, block_size=block)(images, labels)
    q = result.state
    assert float(q.min()) >= 5 and float(q.max()) <= 12 and torch.equal(q, q.round())
    assert float(q.min()) <= 8  # four unit steps down from 12 are possible and some were taken
    adv = result.adversarial
    torch.testing.assert_close(adv.amin(dim=(2, 3)), torch.zeros(2, 1, 16), atol=1e-6, rtol=0)
    torch.testing.assert_close(adv.amax(dim=(2, 3)), torch.ones(2, 1, 16), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["vafa-3d", "vafa-2d"])
def test_paper_variant_starts_at_one_and_keeps_the_intensity_range(name):
    images, labels = random_batch(size=16)
    images = 0.2 + 0.6 * images
    block = (8, 8, 8) if name == "vafa-3d" else (8, 8)
    result = attacks.create(name, make_unet(), steps=3, q_max=10, block_size=block, variant="paper")(
        images, labels)
    q = result.state
    assert float(q.min()) >= 1 and float(q.max()) <= 4 and torch.equal(q, q.round())  # from 1, three unit steps
    adv = result.adversarial
    assert float((adv - images).abs().max()) < 0.05  # fine quantisation, no renormalisation
    assert float(adv.min()) > 0.1 and float(adv.max()) < 0.9


def test_renormalise_slices_guards_constant_slices():
    volume = torch.rand(1, 1, 4, 4, 3) * 200
    volume[..., 1] = 77.0
    out = renormalise_slices(volume)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[..., 1], torch.full((1, 1, 4, 4), 77.0 / 255))
    for d in (0, 2):
        assert float(out[..., d].min()) == pytest.approx(0.0) and float(out[..., d].max()) == pytest.approx(1.0)


def test_vafa2d_honours_use_ssim_loss():
    images, labels = random_batch(batch=1)
    common = {"steps": 4, "q_max": 40, "block_size": (8, 8)}
    plain = attacks.create("vafa-2d", make_unet(), **common)(images, labels)
    gentle = attacks.create("vafa-2d", make_unet(), use_ssim_loss=True, lambda_ssim=50.0, **common)(images, labels)
    assert not torch.equal(plain.state, gentle.state)
    assert float(ssim3d(images, gentle.adversarial)) > float(ssim3d(images, plain.adversarial))


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_steps_are_honoured(steps):
    images, labels = random_batch(batch=1)
    result = attacks.create("vafa-2d", make_unet(), steps=steps, block_size=(8, 8))(images, labels)
    assert result.steps_run == steps and len(result.history["loss"]) == steps


def test_restarts_warn_because_the_start_is_deterministic():
    images, labels = random_batch(batch=1)
    attack = attacks.create("vafa-3d", make_unet(), steps=1, restarts=2, block_size=(8, 8, 8))
    with pytest.warns(UserWarning, match="restarts"):
        attack(images, labels)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"q_max": 4.0}, "q_max"),  # below the code variant's q_min = 5
        ({"q_min": 0.0}, "q_min"),
        ({"q_min": 10.0, "q_max": 8.0}, "q_max"),
        ({"variant": "jpeg"}, "variant"),
        ({"block_size": (2, 8, 8), "use_ssim_loss": True}, "block_size"),
        ({"block_size": (8, 8)}, "block_size"),
        ({"lambda_ssim": -1.0}, "lambda_ssim"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_parameters_raise(params, word):
    with pytest.raises(ValueError, match=word):
        attacks.create("vafa-3d", make_unet(), **params)


def test_paper_variant_defaults_q_min_to_one():
    attack = attacks.create("vafa-3d", make_unet(), variant="paper", q_max=4.0)
    assert attack.q_min == 1.0 and attacks.create("vafa-3d", make_unet()).q_min == 5.0
