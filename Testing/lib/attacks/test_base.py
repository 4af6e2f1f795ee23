"""The shared loop: restarts, early stop, targeted mode, init_state, model hygiene helpers, registry look-ups."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import NUM_CLASSES, make_unet, random_batch
from torch import nn

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks import frozen_model, model_device
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.metrics.overlap import dice_per_sample


class ConstantNet(nn.Module):
    """Predicts class ``cls`` everywhere (a 1×1×1 convolution with zero weights and a bias)."""

    def __init__(self, cls: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, NUM_CLASSES, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.nn.functional.one_hot(torch.tensor(cls), NUM_CLASSES).float() * 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DeepSupervision(nn.Module):
    """Returns a list of outputs, full resolution first (as deep-supervision networks do)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_unet()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.net(x)
        return [out, out[..., ::2, ::2, ::2]]


def _dice(model: nn.Module, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return dice_per_sample(model(images).argmax(1, keepdim=True), reference, NUM_CLASSES)


def test_restarts_keep_the_worst_run_per_sample(fitted_net):
    model, images, clean = fitted_net.model, fitted_net.images, fitted_net.clean_pred
    # fp32: the attack then scores its restarts with exactly the numbers _dice computes
    params = {"steps": 2, "eps": 8, "alpha": 0.01, "precision": "fp32"}
    single = [attacks.create("pgd", model, seed=s, **params)(images, clean).adversarial for s in (4, 5, 6)]
    result = attacks.create("pgd", model, seed=4, restarts=3, **params)(images, clean)
    runs = torch.stack([_dice(model, adv, clean) for adv in single])  # [restart, B]
    got = _dice(model, result.adversarial, clean)
    torch.testing.assert_close(got, runs.min(0).values)
    for b in range(2):
        assert torch.equal(result.adversarial[b], single[int(runs[:, b].argmin())][b])
    assert result.history["restart"] == [0, 0, 1, 1, 2, 2] and result.steps_run == 6


def test_early_stop_when_every_voxel_is_misclassified():
    images, labels = random_batch()
    ones = torch.ones_like(labels)  # the net predicts 0 everywhere: fooled from the first step
    result = attacks.create("saa", ConstantNet(0), steps=5, early_stop=True, block_size=(8, 8, 8))(images, ones)
    assert result.stopped_early and result.steps_run == 1 and len(result.history["loss"]) == 1
    not_yet = attacks.create("saa", ConstantNet(1), steps=3, early_stop=True, block_size=(8, 8, 8))(images, ones)
    assert not not_yet.stopped_early and not_yet.steps_run == 3


def test_early_stop_returns_the_image_that_was_checked():
    images, labels = random_batch()
    start = torch.full_like(images, 0.01)
    result = attacks.create("pgd", ConstantNet(0), steps=5, early_stop=True)(
        images, torch.ones_like(labels), init_state=start)
    torch.testing.assert_close(result.adversarial, (images + start).clamp(0, 1))


def test_targeted_moves_the_prediction_towards_the_target(fitted_net):
    """The target erases class 1: the objective against the target falls and class 1 shrinks in the prediction.

    Not "more voxels equal the target": darkening the bright class-1 ball to erase it also turns class-2 voxels
    (mid-grey) into background, so that count is the difference of two similar numbers, and its sign changed with
    the CPU kernels the net was fitted with (+77, 0 and −7 voxels for AVX2, AVX-512 and non-oneDNN weights, where
    the loss fell by 0.09–0.12 and class 1 lost 20–35 % of its voxels).
    """
    model, images, clean = fitted_net.model, fitted_net.images, fitted_net.clean_pred
    target = torch.where(clean == 1, torch.zeros_like(clean), clean)  # erase class 1
    loss_fn = dice_ce_loss()
    with torch.no_grad():
        loss_before = float(loss_fn(model(images), target))
    erased_before = int((clean == 1).sum())
    for name, params in (("pgd", {"eps": 16, "alpha": 0.02}), ("saa", {"rho": 0.5, "lambda_dice": 1.0})):
        result = attacks.create(name, model, steps=5, targeted=True, **params)(images, clean, target_labels=target)
        with torch.no_grad():
            logits = model(result.adversarial)
        assert float(loss_fn(logits, target)) < loss_before, name
        assert int((logits.argmax(1) == 1).sum()) < erased_before, name


def test_targeted_needs_target_labels_and_only_then():
    images, labels = random_batch()
    with pytest.raises(ValueError, match="target_labels"):
        attacks.create("pgd", make_unet(), steps=1, targeted=True)(images, labels)
    with pytest.raises(ValueError, match="target_labels"):
        attacks.create("pgd", make_unet(), steps=1)(images, labels, target_labels=labels)
    with pytest.raises(ValueError, match="target_labels"):
        attacks.create("pgd", make_unet(), steps=1, targeted=True)(images, labels, target_labels=labels[..., :4])


def test_float_labels_with_integer_values_are_accepted_and_others_rejected():
    images, labels = random_batch()
    attack = attacks.create("bim", make_unet(), steps=1)
    expected = attack(images, labels).adversarial
    assert torch.equal(attack(images, labels.float()).adversarial, expected)
    with pytest.raises(ValueError, match="labels"):
        attack(images, labels.float() + 0.5)


def test_init_state_must_be_finite():
    images, labels = random_batch()
    bad = torch.full_like(images, float("nan"))
    with pytest.raises(ValueError, match="init_state"):
        attacks.create("pgd", make_unet(), steps=1)(images, labels, init_state=bad)


def test_deep_supervision_uses_the_first_output():
    images, labels = random_batch()
    wrapped = DeepSupervision()
    got = attacks.create("bim", wrapped, steps=2)(images, labels).adversarial
    assert torch.equal(got, attacks.create("bim", wrapped.net, steps=2)(images, labels).adversarial)


def test_frozen_model_restores_mixed_modes_and_flags():
    model = make_unet()
    model.train()
    first = next(iter(model.children()))
    first.eval()
    params = list(model.parameters())
    params[0].requires_grad_(False)
    with frozen_model(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in params)
    assert model.training and not first.training
    assert not params[0].requires_grad and all(p.requires_grad for p in params[1:])


def test_model_device():
    assert model_device(make_unet()) == torch.device("cpu")
    assert model_device(nn.Identity()) == torch.device("cpu")


def test_config_and_repr_carry_the_parameters_in_lib_units():
    attack = attacks.create("pgd", make_unet(), eps=8, alpha=0.02, steps=3, seed=2)
    config = attack.config
    assert config["attack"] == "pgd" and config["eps"] == 8.0 and config["alpha"] == 0.02 and config["steps"] == 3
    assert attack.radius == pytest.approx(8 / 255)
    assert "eps=8.0" in repr(attack) and repr(attack).startswith("PGD(")
    saa = attacks.create("saa", make_unet(), block_size=(16, 8, 8))
    assert saa.config["block_size"] == [16, 8, 8]


def test_attack_parameters_lists_own_and_base_parameters():
    params = attacks.attack_parameters("saa")
    assert {"rho", "block_size", "lambda_dice", "use_ssim_loss", "lambda_ssim", "freq_band", "beta", "steps", "seed",
            "targeted", "restarts", "early_stop", "clip_input", "precision"} == set(params)
    assert params["rho"] == 0.2 and params["beta"] == 0.1
    assert set(attacks.attack_parameters("gn")) == {"std", "seed", "clip_input", "precision"}
    assert params["precision"] == "auto"
    assert "q_min" in attacks.attack_parameters("vafa-2d") and "variant" in attacks.attack_parameters("vafa-3d")
    assert "alpha" not in attacks.attack_parameters("fgsm")


def test_unknown_attack_name_raises():
    with pytest.raises(ValueError, match="attack must be one of"):
        attacks.create("autoattack", make_unet())
    with pytest.raises(ValueError, match="attack"):
        attacks.attack_parameters("ssa-3d")  # named by the reference's scripts, implemented nowhere


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="model"):
        attacks.create("pgd", object())
    with pytest.raises(TypeError, match="loss_fn"):
        attacks.create("pgd", make_unet(), loss_fn=3)
    with pytest.raises(TypeError, match="steps"):
        attacks.create("pgd", make_unet(), steps="5")
