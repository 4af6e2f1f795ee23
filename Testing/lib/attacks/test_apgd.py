"""APGD: checkpoints, step-size halving, momentum, best iterate and SEA's progressive radius, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch
from attack_helpers import NUM_CLASSES, make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.apgd import checkpoint_steps, stage_plan
from SpectrumAttackLib.attacks.base import _Run
from SpectrumAttackLib.attacks.losses import ReferenceSSIM
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.precision import resolve_precision
from SpectrumAttackLib.runtime import make_generator

EPS = 8.0
R = EPS / 255


def test_checkpoints_and_stages_follow_autoattack_and_sea():
    # first window 22 % of the steps, each next one 3 % shorter, never under 6 %
    assert checkpoint_steps(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoint_steps(10) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert stage_plan(10, 4.0, True) == [(3, 8.0), (3, 6.0), (4, 4.0)]
    assert stage_plan(300, 4.0, True) == [(90, 8.0), (90, 6.0), (120, 4.0)]
    assert stage_plan(7, 4.0, False) == [(7, 4.0)]


def _rule(steps: int, progressive: bool = False):
    """An APGD rule on a 2-voxel volume (label 0 everywhere) whose losses the test sets through the logits."""
    attack = attacks.create("apgd", make_unet(), eps=EPS, steps=steps, random_start=False,
                            progressive_radius=progressive)
    images = torch.full((1, 1, 1, 1, 2), 0.5)
    labels = torch.zeros(1, 1, 1, 1, 2, dtype=torch.long)
    run = _Run(images, labels, labels, None, ReferenceSSIM(images), resolve_precision("fp32", "cpu"),
               {"loss": [], "dice": [], "ssim": [], "restart": []}, 0, None, make_generator(0, "cpu"))
    return attack.step_rule(run), run


def _logits(loss: float) -> torch.Tensor:
    """Two-class logits whose voxel-mean cross-entropy to label 0 is ``loss``."""
    margin = -math.log(math.expm1(loss))
    return torch.tensor([margin, 0.0]).view(1, 2, 1, 1, 1).expand(1, 2, 1, 1, 2).clone()


def _feed(rule, run, variable: torch.Tensor, loss: float, t: int, dice: float = 0.5, grad: float = 1.0):
    run.dice = torch.tensor([dice])
    return rule.update(variable, torch.full_like(variable, grad), _logits(loss), t)


def test_step_size_halves_when_the_loss_rarely_rose_and_returns_to_the_best_point():
    rule, run = _rule(10)  # checkpoints after iterates 2, 3, ..., 9
    v = [torch.full((1, 1, 1, 1, 2), c) for c in (0.0, 0.01, 0.02, -0.01, 0.0)]
    out = _feed(rule, run, v[0], 1.0, 0)  # x_0: a plain sign step of 2r, projected on the r ball
    assert torch.allclose(out, torch.full_like(out, R)) and float(rule.step_size) == pytest.approx(2 * R)
    _feed(rule, run, v[1], 2.0, 1)
    _feed(rule, run, v[2], 3.0, 2)  # checkpoint: 2 rises of 2 > 0.75 · 2 → η kept
    assert float(rule.step_size) == pytest.approx(2 * R)
    out = _feed(rule, run, v[3], 2.5, 3, grad=-1.0)  # checkpoint: 0 rises of 1 → η halved, back to x_2 and its grad
    assert float(rule.step_size) == pytest.approx(R)
    towards = (v[2] + R * 1.0).clamp(-R, R)  # from the best point with its gradient (+1); no momentum (x_prev = x_2)
    torch.testing.assert_close(out, v[2] + 0.75 * (towards - v[2]))
    _feed(rule, run, v[4], 2.6, 4)  # 1 rise of 1: η kept (and the last checkpoint did halve)
    assert float(rule.step_size) == pytest.approx(R)
    _feed(rule, run, v[4], 2.7, 5)  # rose, but η was not halved at the last checkpoint and the best loss (3.0)
    assert float(rule.step_size) == pytest.approx(R / 2)  # has not improved since: halved (the paper's condition 2)


def test_momentum_mixes_the_step_with_the_last_move():
    rule, run = _rule(10)
    first = torch.zeros(1, 1, 1, 1, 2)
    _feed(rule, run, first, 1.0, 0)
    second = torch.full_like(first, -0.01)
    out = _feed(rule, run, second, 2.0, 1)  # loss rose, no checkpoint at iterate 1
    towards = (second + 2 * R).clamp(-R, R)
    torch.testing.assert_close(out, (second + 0.75 * (towards - second) + 0.25 * (second - first)).clamp(-R, R))


def test_best_iterate_is_the_lowest_dice_later_one_on_ties():
    rule, run = _rule(10)
    dices = [0.8, 0.3, 0.5, 0.3, 0.9]
    for t, dice in enumerate(dices):
        _feed(rule, run, torch.full((1, 1, 1, 1, 2), 0.001 * t), 1.0 + t, t, dice=dice)
    assert float(rule.best_score) == pytest.approx(0.3)
    assert torch.allclose(rule.best_variable, torch.full_like(rule.best_variable, 0.003))  # iterate 3, not 1


def test_progressive_radius_starts_each_stage_from_the_best_iterate_in_the_smaller_ball():
    rule, run = _rule(10, progressive=True)  # stages of 3, 3, 4 steps at 2ε, 1.5ε, ε
    assert rule.radius == pytest.approx(2 * R)
    big = torch.full((1, 1, 1, 1, 2), 1.9 * R)
    _feed(rule, run, torch.zeros_like(big), 1.0, 0, dice=0.9)
    _feed(rule, run, big, 2.0, 1, dice=0.2)
    out = _feed(rule, run, torch.zeros_like(big), 3.0, 2, dice=0.6)  # end of stage 1
    assert rule.stage == 1 and rule.radius == pytest.approx(1.5 * R)
    torch.testing.assert_close(out, torch.full_like(big, 1.5 * R))  # best (1.9r) projected into the 1.5ε ball
    assert float(rule.step_size) == pytest.approx(3 * R) and rule.best_score is None  # schedule restarted
    assert not rule.may_stop(3)


def _fitted_dice(model, images, reference) -> torch.Tensor:
    with torch.no_grad():
        return dice_per_sample(model(images).argmax(1, keepdim=True), reference, NUM_CLASSES)


@pytest.mark.parametrize("progressive", [False, True])
def test_returns_the_lowest_dice_iterate_within_eps(fitted_net, progressive):
    model, images, clean = fitted_net.model, fitted_net.images, fitted_net.clean_pred
    result = attacks.create("apgd", model, eps=16, steps=10, loss="masked-ce", precision="fp32", seed=1,
                            progressive_radius=progressive)(images, clean)
    assert float((result.adversarial - images).abs().max()) <= 16 / 255 + 1e-6
    got = _fitted_dice(model, result.adversarial, clean)
    last_stage = result.history["dice"][-4:] if progressive else result.history["dice"]
    assert float(got.mean()) <= min(last_stage) + 1e-6
    assert float(got.mean()) < float(_fitted_dice(model, images, clean).mean())


def test_early_stop_and_seeded_restarts():
    images, labels = random_batch(batch=1)
    model = make_unet()
    with torch.no_grad():
        wrong = (model(images).argmax(1, keepdim=True) + 1) % NUM_CLASSES  # a map the model never outputs
    result = attacks.create("apgd", model, eps=4, steps=6, early_stop=True, random_start=False,
                            precision="fp32")(images, wrong)
    assert result.stopped_early and result.steps_run == 1
    run = lambda: attacks.create("apgd", model, eps=4, steps=3, restarts=2, seed=3,  # noqa: E731
                                 precision="fp32")(images, labels).adversarial
    assert torch.equal(run(), run())
