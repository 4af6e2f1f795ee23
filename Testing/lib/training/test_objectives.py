"""Training objectives: normal, adversarial and VAFT loss terms (seed-algorithms §7.1)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.training.config import TrainingMode
from SpectrumAttackLib.training.objectives import (
    adversarial_examples,
    frequency_consistency_loss,
    training_loss,
)


def _f(value: torch.Tensor) -> float:
    return float(value.detach())


@pytest.fixture
def batch(cases):
    images = torch.stack([c["image"] for c in cases[:2]])
    labels = torch.stack([c["label"] for c in cases[:2]]).long()
    return images, labels


def test_freq_loss_zero_for_identical_logits():
    logits = torch.randn(2, 3, 8, 8, 8)
    assert _f(frequency_consistency_loss(logits, logits.clone())) == 0.0


def test_freq_loss_matches_scipy_dct_and_is_positive():
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(2, 3, 8, 6, 4, generator=g, dtype=torch.float64)
    adv = clean + 0.1 * torch.randn(2, 3, 8, 6, 4, generator=g, dtype=torch.float64)
    z_clean = scipy.fft.dctn(clean.numpy(), type=2, norm="ortho", axes=(2, 3, 4))
    z_adv = scipy.fft.dctn(adv.numpy(), type=2, norm="ortho", axes=(2, 3, 4))
    expected = np.abs(z_clean - z_adv).sum() / np.abs(z_clean).sum()
    got = _f(frequency_consistency_loss(clean, adv))
    assert got > 0
    assert got == pytest.approx(expected, rel=1e-5)


def test_freq_loss_gradient_reaches_both_branches():
    clean = torch.randn(1, 2, 4, 4, 4, requires_grad=True)
    adv = (clean.detach() + 0.5 * torch.randn(1, 2, 4, 4, 4)).requires_grad_(True)
    frequency_consistency_loss(clean, adv).backward()
    assert clean.grad.abs().sum() > 0 and adv.grad.abs().sum() > 0


def test_freq_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="adversarial_logits"):
        frequency_consistency_loss(torch.zeros(1, 2, 4, 4, 4), torch.zeros(1, 2, 4, 4, 2))


def test_normal_loss_is_dice_ce_on_clean(tiny_model, batch):
    images, labels = batch
    loss_fn = dice_ce_loss()
    terms = training_loss(TrainingMode.NORMAL, tiny_model, images, labels, loss_fn)
    assert _f(terms.total) == pytest.approx(_f(loss_fn(tiny_model(images), labels)))
    assert terms.adversarial is None and terms.freq is None


def test_adversarial_loss_uses_only_adversarial_images(tiny_model, batch):
    images, labels = batch
    loss_fn = dice_ce_loss()
    adv = (images + 0.3).clamp(0, 1)
    terms = training_loss(TrainingMode.ADVERSARIAL, tiny_model, images, labels, loss_fn, adv)
    assert _f(terms.total) == pytest.approx(_f(loss_fn(tiny_model(adv), labels)))
    assert _f(terms.total) != pytest.approx(_f(loss_fn(tiny_model(images), labels)))
    assert terms.clean is None


def test_vaft_loss_is_sum_of_three_terms(tiny_model, batch):
    images, labels = batch
    loss_fn = dice_ce_loss()
    adv = (images + 0.2).clamp(0, 1)
    terms = training_loss(TrainingMode.VAFT, tiny_model, images, labels, loss_fn, adv)
    clean_logits, adv_logits = tiny_model(images), tiny_model(adv)
    assert _f(terms.clean) == pytest.approx(_f(loss_fn(clean_logits, labels)))
    assert _f(terms.adversarial) == pytest.approx(_f(loss_fn(adv_logits, labels)))
    assert _f(terms.freq) == pytest.approx(_f(frequency_consistency_loss(clean_logits, adv_logits)))
    assert _f(terms.freq) > 0
    assert _f(terms.total) == pytest.approx(_f(terms.clean + terms.adversarial + terms.freq))
    same = training_loss(TrainingMode.VAFT, tiny_model, images, labels, loss_fn, images.clone())
    assert _f(same.freq) == 0.0


def test_adversarial_modes_need_adversarial_images(tiny_model, batch):
    with pytest.raises(ValueError, match="adversarial_images"):
        training_loss(TrainingMode.VAFT, tiny_model, *batch, dice_ce_loss())


def test_adversarial_examples_come_from_the_attack(tiny_model, batch):
    images, labels = batch
    tiny_model.train()
    params = {"eps": 8, "alpha": 0.01, "steps": 2}
    adv = adversarial_examples("pgd", tiny_model, images, labels, seed=5, params=params)
    expected = attacks.create("pgd", tiny_model, seed=5, **params)(images, labels).adversarial
    assert torch.equal(adv, expected)
    assert 0 < _f((adv - images).abs().max()) <= 8 / 255 + 1e-6
    assert tiny_model.training  # the attack restored the training mode
    assert all(p.requires_grad for p in tiny_model.parameters())
    other = adversarial_examples("pgd", tiny_model, images, labels, seed=6, params=params)
    assert not torch.equal(adv, other)  # the per-batch seed reaches the attack


def test_adversarial_examples_accept_augmented_intensities(tiny_model, batch):
    """Intensity augmentation can leave [0, 1]; the training attack clamps the input instead of failing."""
    images, labels = batch
    adv = adversarial_examples("pgd", tiny_model, images * 1.1 + 0.05, labels, seed=0, params={"steps": 1})
    assert _f(adv.min()) >= 0.0 and _f(adv.max()) <= 1.0
