"""Properties every attack must have, parametrised over ``attacks.available()`` (style.md §2.7)."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import FAST, ITERATIVE, NUM_CLASSES, RANDOM, STRONG, build, make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks import AttackResult
from SpectrumAttackLib.metrics.overlap import dice_per_sample

ALL = attacks.available()


def test_registry_lists_the_seed_names():
    assert ALL == ["saa", "saa-2d", "vafa-3d", "vafa-2d", "pgd", "fgsm", "bim", "gn", "segpgd", "cospgd", "ssa-2d",
                   "dfb", "dfb-2d", "mi-fgsm", "vmi-fgsm", "apgd"]
    assert set(FAST) == set(ALL) == set(STRONG)


@pytest.mark.parametrize("name", ALL)
def test_registry_key_resolves_to_class_with_that_name(name):
    cls = attacks.attack_class(name)
    assert cls.name == name
    assert cls.paper


@pytest.mark.parametrize("name", ALL)
def test_issue_snippet_runs(name, unet, batch):
    images, labels = batch
    attack = attacks.create(name, unet, seed=0, **FAST[name])
    result = attack(images, labels)
    assert isinstance(result, AttackResult)
    assert result.seconds > 0
    assert set(result.history) == {"loss", "dice", "ssim", "restart"}
    expected_entries = max(attack.steps, 1)
    assert all(len(v) == expected_entries for v in result.history.values())
    assert result.steps_run == attack.steps
    assert result.config["attack"] == name
    assert isinstance(result.state, torch.Tensor) and not result.state.requires_grad


@pytest.mark.parametrize("name", ALL)
def test_output_shape_dtype_range_and_inputs_untouched(name, unet, batch):
    images, labels = batch
    images64 = images.double()
    before_images, before_labels = images64.clone(), labels.clone()
    adv = build(name, unet)(images64, labels).adversarial
    assert adv.shape == images.shape and adv.dtype == torch.float64 and adv.device == images.device
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert not torch.equal(adv, images64)
    assert torch.equal(images64, before_images) and torch.equal(labels, before_labels)


@pytest.mark.parametrize("name", ALL)
def test_model_mode_flags_restored_and_no_param_grads(name, batch):
    model = make_unet(norm="batch")  # running statistics would change under a training-mode forward pass
    model.train()
    frozen = next(iter(model.parameters()))
    frozen.requires_grad_(False)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    build(name, model)(*batch)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert model.training and all(m.training for m in model.modules())
    assert not frozen.requires_grad
    assert all(p.requires_grad for p in list(model.parameters())[1:])
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ALL)
def test_model_restored_when_the_attack_raises(name, batch):
    model = make_unet()
    model.train()
    images, labels = batch
    with pytest.raises(ValueError, match="labels"):
        build(name, model)(images, labels + NUM_CLASSES)  # class ids beyond the model's 3 outputs
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ALL)
def test_deterministic_same_seed_and_repeated_call(name, unet, batch):
    attack = build(name, unet, seed=3)
    first = attack(*batch).adversarial
    assert torch.equal(attack(*batch).adversarial, first)  # no state carried over between calls
    assert torch.equal(build(name, unet, seed=3)(*batch).adversarial, first)


@pytest.mark.parametrize("name", RANDOM)
def test_another_seed_gives_another_output(name, unet, batch):
    a = build(name, unet, seed=0)(*batch).adversarial
    b = build(name, unet, seed=1)(*batch).adversarial
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_works_under_no_grad(name, unet, batch):
    expected = build(name, unet)(*batch).adversarial
    with torch.no_grad():
        got = build(name, unet)(*batch).adversarial
    assert torch.equal(got, expected)


def _without_random_start(name: str) -> dict:
    return {"random_start": False} if name in ("pgd", "segpgd", "cospgd", "apgd") else {}


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("gn", "ssa-2d", "vmi-fgsm")])  # noise drawn per batch
def test_batch_equals_single_without_random_start(name, unet):
    images, labels = random_batch(batch=2, seed=4)
    attack = build(name, unet, precision="fp32", **_without_random_start(name))  # a claim about the loop, not bf16
    init = None
    if name in ("saa", "saa-2d"):  # random start: give both calls the same ξ
        init = attack(images, labels).state * 0 + 1.0 + 0.1 * torch.linspace(-1, 1, 2).view(2, 1, 1, 1, 1, 1)
    whole = attack(images, labels, init_state=init).adversarial
    for i in range(2):
        alone = attack(images[i : i + 1], labels[i : i + 1],
                       init_state=None if init is None else init[i : i + 1]).adversarial
        torch.testing.assert_close(alone[0], whole[i], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_lowers_dice_of_the_fitted_net(name, fitted_net):
    clean = fitted_net.clean_pred
    assert float(dice_per_sample(fitted_net.labels, clean, 3).mean()) > 0.8  # the fixture is meaningful
    result = attacks.create(name, fitted_net.model, seed=0, **STRONG[name])(fitted_net.images, clean)
    with torch.no_grad():
        pred = fitted_net.model(result.adversarial).argmax(1, keepdim=True)
    dice = float(dice_per_sample(pred, clean, fitted_net.num_classes).mean())
    assert dice < (0.9 if name in ITERATIVE or name == "fgsm" else 0.97), dice  # one-shot GN / DFB: weaker
    assert not fitted_net.model.training


@pytest.mark.parametrize("name", ALL)
def test_progress_reports_every_step(name, unet, batch):
    seen = []
    attack = build(name, unet)
    attack(*batch, progress=seen.append)
    total = max(attack.steps, 1)
    assert [p.done for p in seen] == list(range(1, total + 1))
    assert all(p.total == total and p.stage == "attack" for p in seen)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", ALL)
def test_bad_images_raise(name, unet, batch):
    images, labels = batch
    attack = build(name, unet)
    with pytest.raises(ValueError, match="images"):
        attack(images[0], labels)
    bad = images.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images"):
        attack(bad, labels)
    with pytest.raises(ValueError, match="images"):
        attack(images * 2, labels)
    clipped = build(name, unet, clip_input=True)(images * 2, labels).adversarial
    assert clipped.shape == images.shape and float(clipped.max()) <= 1.0


@pytest.mark.parametrize("name", ALL)
def test_bad_labels_raise(name, unet, batch):
    images, labels = batch
    attack = build(name, unet)
    with pytest.raises(ValueError, match="labels"):
        attack(images, labels[..., :8])
    with pytest.raises(ValueError, match="labels"):
        attack(images, labels[:, 0])
    with pytest.raises(ValueError, match="labels"):
        attack(images, labels - 1)


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_raises(name, unet):
    with pytest.raises(ValueError, match="not_a_parameter"):
        attacks.create(name, unet, not_a_parameter=1)


@pytest.mark.parametrize("name", ITERATIVE)
def test_zero_steps_raise_for_iterative_attacks(name, unet):
    with pytest.raises(ValueError, match="steps"):
        attacks.create(name, unet, steps=0)


@pytest.mark.parametrize("name", [n for n in ALL if n not in ITERATIVE])
def test_one_shot_attacks_take_no_steps(name):
    assert "steps" not in attacks.attack_parameters(name)
    assert "restarts" not in attacks.attack_parameters(name)


@pytest.mark.parametrize("name", ALL)
def test_init_state_of_wrong_shape_raises(name, unet, batch):
    with pytest.raises(ValueError, match="init_state"):
        build(name, unet)(*batch, init_state=torch.zeros(3))


@pytest.mark.parametrize("name", ALL)
def test_result_comes_back_to_the_input_layout(name, unet, batch):
    images, labels = batch
    result = build(name, unet)(images[:, :, :, :, :12].contiguous(), labels[..., :12])  # non-cubic, 16×16×12
    assert result.adversarial.shape == (2, 1, 16, 16, 12)
