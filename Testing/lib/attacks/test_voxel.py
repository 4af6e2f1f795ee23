"""Voxel-domain attacks: PGD, FGSM, BIM, GN, SegPGD, CosPGD — budgets, update rules, objectives, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.runtime import make_generator

EPS_ATTACKS = ("pgd", "fgsm", "bim", "segpgd", "cospgd")


@pytest.mark.parametrize("name", EPS_ATTACKS)
@pytest.mark.parametrize("eps", [2.0, 8.0])
def test_linf_budget_holds(name, eps):
    images, labels = random_batch()
    params = {"eps": eps} if name == "fgsm" else {"eps": eps, "alpha": 0.02, "steps": 3}
    result = attacks.create(name, make_unet(), **params)(images, labels)
    delta = result.adversarial - images
    assert float(delta.abs().max()) <= eps / 255 + 1e-6
    assert float(delta.abs().max()) >= 0.9 * eps / 255  # the budget is reached
    torch.testing.assert_close(result.state, delta)


@pytest.mark.parametrize("name", EPS_ATTACKS)
def test_zero_eps_returns_the_input(name):
    images, labels = random_batch()
    assert torch.equal(attacks.create(name, make_unet(), eps=0)(images, labels).adversarial, images)


def test_zero_std_returns_the_input():
    images, labels = random_batch()
    assert torch.equal(attacks.create("gn", make_unet(), std=0)(images, labels).adversarial, images)


def test_fgsm_is_one_signed_gradient_step_of_eps():
    images, labels = random_batch(batch=1)
    model = make_unet().eval()
    x = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(dice_ce_loss()(model(x), labels), x)
    expected = (images + 6 / 255 * grad.sign()).clamp(0, 1)
    result = attacks.create("fgsm", model, eps=6, precision="fp32")(images, labels)
    torch.testing.assert_close(result.adversarial, expected, atol=1e-7, rtol=0)
    assert result.steps_run == 1


def test_pgd_step_and_projection_follow_the_reference():
    """x ← x + α·sign(∇), δ = clip(x − x₀, −ε, ε), x = clip(x₀ + δ, 0, 1), from the given start."""
    images, labels = random_batch(batch=1, seed=3)
    model = make_unet().eval()
    eps, alpha = 4 / 255, 0.01
    start = torch.empty_like(images).uniform_(-eps, eps, generator=torch.Generator().manual_seed(1))
    x = (images + start).clamp(0, 1)
    for _ in range(2):
        x = x.requires_grad_(True)
        (grad,) = torch.autograd.grad(dice_ce_loss()(model(x), labels), x)
        x = (images + (x.detach() + alpha * grad.sign() - images).clamp(-eps, eps)).clamp(0, 1)
    result = attacks.create("pgd", model, eps=4, alpha=alpha, steps=2, precision="fp32")(images, labels,
                                                                                          init_state=start)
    torch.testing.assert_close(result.adversarial, x, atol=1e-6, rtol=0)


def test_bim_is_pgd_without_random_start():
    images, labels = random_batch()
    bim = attacks.create("bim", make_unet(), eps=4, alpha=0.01, steps=3, seed=1)(images, labels)
    pgd = attacks.create("pgd", make_unet(), eps=4, alpha=0.01, steps=3, seed=7, random_start=False)(images, labels)
    assert torch.equal(bim.adversarial, pgd.adversarial)


def test_gn_draws_from_the_seeded_generator():
    images, labels = random_batch()
    result = attacks.create("gn", make_unet(), std=8, seed=11)(images, labels)
    noise = torch.randn(images.shape, generator=make_generator(11))
    torch.testing.assert_close(result.adversarial, (images + 8 / 255 * noise).clamp(0, 1))
    assert len(result.history["dice"]) == 1 and result.steps_run == 0


def _logits_and_labels(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 6, 5, 4, generator=g), torch.randint(0, 3, (2, 1, 6, 5, 4), generator=g)


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("t", [0, 3, 9])
def test_segpgd_objective_splits_correct_and_wrong_voxels(t, targeted):
    attack = attacks.create("segpgd", make_unet(), steps=10, targeted=targeted)
    assert attack.lambda_at(t) == pytest.approx(t / 20)
    logits, labels = _logits_and_labels(t)
    logits.requires_grad_(True)
    value = attack.objective(logits, labels, None, None, None, t)
    ce = F.cross_entropy(logits, labels[:, 0], reduction="none")
    hit = logits.argmax(1) == labels[:, 0]
    lam = t / 20
    if targeted:
        expected = -(((1 - lam) * ce[~hit]).sum() + (lam * ce[hit]).sum()) / ce.numel()
    else:
        expected = (((1 - lam) * ce[hit]).sum() + (lam * ce[~hit]).sum()) / ce.numel()
    torch.testing.assert_close(value, expected)
    (g1,) = torch.autograd.grad(value, logits)
    (g2,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("targeted", [False, True])
def test_cospgd_weights_every_voxel_by_the_detached_cosine(targeted):
    attack = attacks.create("cospgd", make_unet(), targeted=targeted)
    logits, labels = _logits_and_labels(4)
    logits.requires_grad_(True)
    value = attack.objective(logits, labels, None, None, None, 0)
    probs = logits.detach().softmax(1)
    onehot = F.one_hot(labels[:, 0], 3).movedim(-1, 1).float()
    cos = (probs * onehot).sum(1) / (probs.norm(dim=1) * onehot.norm(dim=1))
    ce = F.cross_entropy(logits, labels[:, 0], reduction="none")
    expected = -((1 - cos) * ce).mean() if targeted else (cos * ce).mean()
    torch.testing.assert_close(value, expected)
    (g1,) = torch.autograd.grad(value, logits)
    (g2,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(g1, g2)  # the cosine carries no gradient


@pytest.mark.parametrize("name", ["segpgd", "cospgd"])
def test_custom_loss_fn_is_reported_as_ignored(name):
    with pytest.warns(UserWarning, match="loss_fn"):
        attacks.create(name, make_unet(), dice_ce_loss())


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("pgd", {"eps": -1.0}, "eps"),
        ("pgd", {"eps": 256.0}, "eps"),
        ("fgsm", {"eps": -0.5}, "eps"),
        ("bim", {"alpha": 0.0}, "alpha"),
        ("segpgd", {"alpha": 2.0}, "alpha"),
        ("cospgd", {"steps": 0}, "steps"),
        ("gn", {"std": -1.0}, "std"),
        ("gn", {"std": 300.0}, "std"),
        ("fgsm", {"steps": 3}, "steps"),
        ("gn", {"targeted": True}, "targeted"),
        ("bim", {"random_start": True}, "random_start"),
    ],
)
def test_bad_parameters_raise(name, params, word):
    with pytest.raises(ValueError, match=word):
        attacks.create(name, make_unet(), **params)
