"""MI-FGSM and VMI-FGSM: their update rules on a tiny UNet against a direct re-implementation of the papers'
equations (Dong et al. 2018, Wang & He 2021), the published defaults, seeding and the budget."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.runtime import make_generator


def gradient(model, x, labels):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(dice_ce_loss()(model(x), labels), x)
    return grad


def l1(grad):
    return grad / grad.abs().flatten(1).mean(1).view(-1, 1, 1, 1, 1)


def project(x, adv, radius):
    return (x + (adv - x).clamp(-radius, radius)).clamp(0, 1)


def test_mi_fgsm_follows_the_momentum_update():
    model = make_unet(1).eval()
    images, labels = random_batch(batch=2, seed=3)
    eps, steps, mu = 8.0, 3, 0.8
    result = attacks.create("mi-fgsm", model, eps=eps, steps=steps, decay=mu, precision="fp32")(images, labels)
    radius, alpha = eps / 255, eps / 255 / steps
    adv, g = images.clone(), torch.zeros_like(images)
    for _ in range(steps):
        g = mu * g + l1(gradient(model, adv, labels))
        adv = project(images, adv + alpha * g.sign(), radius)
    torch.testing.assert_close(result.adversarial, adv, atol=1e-6, rtol=0)
    torch.testing.assert_close(result.state, adv - images, atol=1e-6, rtol=0)
    assert (result.adversarial - images).abs().max() <= radius + 1e-6


def test_vmi_fgsm_follows_the_variance_tuned_update_with_seeded_neighbours():
    model = make_unet(2).eval()
    images, labels = random_batch(batch=1, seed=5)
    eps, steps, mu, samples, beta = 8.0, 3, 1.0, 3, 1.5
    result = attacks.create("vmi-fgsm", model, eps=eps, steps=steps, decay=mu, vmi_samples=samples,
                            vmi_beta=beta, seed=11, precision="fp32")(images, labels)
    radius, alpha = eps / 255, eps / 255 / steps
    generator = make_generator(11)
    adv, g, v = images.clone(), torch.zeros_like(images), torch.zeros_like(images)
    for _ in range(steps):
        here = gradient(model, adv, labels)
        neighbours = torch.stack([
            gradient(model, adv + torch.empty_like(adv).uniform_(-beta * radius, beta * radius, generator=generator),
                     labels) for _ in range(samples)]).mean(0)
        g = mu * g + l1(here + v)
        v = neighbours - here
        adv = project(images, adv + alpha * g.sign(), radius)
    torch.testing.assert_close(result.adversarial, adv, atol=1e-6, rtol=0)
    again = attacks.create("vmi-fgsm", model, eps=eps, steps=steps, vmi_samples=samples, seed=11,
                           precision="fp32")(images, labels)
    other = attacks.create("vmi-fgsm", model, eps=eps, steps=steps, vmi_samples=samples, seed=12,
                           precision="fp32")(images, labels)
    assert torch.equal(again.adversarial, result.adversarial)
    assert not torch.equal(other.adversarial, result.adversarial)


def test_published_defaults_and_bad_values():
    assert attacks.attack_parameters("mi-fgsm")["decay"] == 1.0
    vmi = attacks.attack_parameters("vmi-fgsm")
    assert (vmi["decay"], vmi["vmi_samples"], vmi["vmi_beta"]) == (1.0, 20, 1.5)
    model = make_unet()
    with pytest.raises(ValueError, match=r"decay must be in \[0, inf\], got -1"):
        attacks.create("mi-fgsm", model, decay=-1)
    with pytest.raises(ValueError, match=r"vmi_samples must be an integer in \[1, inf\], got 0"):
        attacks.create("vmi-fgsm", model, vmi_samples=0)
    with pytest.raises(ValueError, match=r"vmi_beta must be in \(0, inf\], got 0"):
        attacks.create("vmi-fgsm", model, vmi_beta=0)
