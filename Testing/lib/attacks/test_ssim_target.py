"""at_ssim: the strongest budget per volume at a target 3-D SSIM, for every family with a strength knob."""

from __future__ import annotations

import math

import pytest
import torch
from attack_helpers import FAST, make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.ssim_target import budget_knob, search_levels
from SpectrumAttackLib.metrics.volume_ssim import volume_ssim


def _synthetic(curve):
    """A search on a known SSIM-vs-budget curve: the 'image' of a run carries its budget."""
    calls = []

    def run_at(budget: float):
        calls.append(budget)
        return torch.full((1, 1, 1, 1, 1), budget), None

    return run_at, (lambda image: curve(float(image))), calls


def test_three_levels_share_their_runs_and_land_within_the_tolerance():
    run_at, ssim_of, calls = _synthetic(lambda b: 1 - 3e-4 * b**2.3)
    levels = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "eps", [0.99, 0.97, 0.95], start=4.0)
    assert [lv.status for lv in levels] == ["reached"] * 3
    for level in levels:
        assert level.target <= level.ssim <= level.target + 0.002
        assert 1 - 3e-4 * level.budget**2.3 == pytest.approx(level.ssim)
    assert len(calls) <= 6 and levels[-1].runs == len(calls)


def test_unreachable_non_monotone_and_weakest_are_reported_not_clipped():
    run_at, ssim_of, _ = _synthetic(lambda b: 1 - 1e-6 * b)
    (level,) = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "eps", [0.9], start=4.0)
    assert level.status == "unreachable" and level.budget == 255.0 and level.ssim > 0.9
    run_at, ssim_of, _ = _synthetic(lambda b: 1 - 0.003 * b if b <= 10 else 0.999)  # beyond 10: *more* similar
    (level,) = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "eps", [0.95], start=4.0)
    assert level.status == "non-monotone"
    run_at, ssim_of, _ = _synthetic(lambda b: 0.5)  # VAFA-like: even the weakest q_max is too strong
    (level,) = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "q_max", [0.95], start=20.0)
    assert level.status == "below-at-weakest" and level.ssim == 0.5
    run_at, ssim_of, _ = _synthetic(lambda b: 1 - 3e-4 * b**2)
    (level,) = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "eps", [0.97], start=4.0, max_runs=1,
                             tolerance=1e-9)
    assert level.status == "max-runs" and level.runs == 1 and level.ssim >= 0.97


@pytest.mark.parametrize("name", ["pgd", "apgd", "saa", "vafa-3d", "gn"])
def test_every_family_reaches_the_target_on_a_tiny_net(name):
    images, labels = random_batch(batch=2, size=16, seed=2)
    params = {k: v for k, v in FAST[name].items()} | {"precision": "fp32"}
    found = attacks.at_ssim(name, make_unet(), 0.97, images=images, labels=labels, params=params)
    assert found.budget_name == budget_knob(name)
    assert found.status == ["reached", "reached"], found.levels
    assert found.adversarial.shape == images.shape
    for i in range(2):
        achieved = volume_ssim(images[i, 0], found.adversarial[i, 0])
        assert achieved == pytest.approx(found.ssim[i], abs=1e-9)
        assert 0.97 <= achieved <= 0.972
        assert 1 <= found.runs[i] <= 8
        # the budget found reproduces its image with a fresh seeded run
        again = attacks.create(name, make_unet(), **params, **{found.budget_name: found.budget[i]})(
            images[i : i + 1], labels[i : i + 1])
        assert torch.equal(again.adversarial, found.adversarial[i : i + 1])


def test_seeded_unreachable_and_bad_requests():
    images, labels = random_batch(batch=1, size=16, seed=2)
    run = lambda: attacks.at_ssim("pgd", make_unet(), 0.97, images=images, labels=labels,  # noqa: E731
                                  params={"steps": 2, "seed": 4})
    first, second = run(), run()
    assert first.budget == second.budget and torch.equal(first.adversarial, second.adversarial)
    capped = attacks.at_ssim("gn", make_unet(), 0.5, images=images, labels=labels, max_budget=0.5)
    assert capped.status == ["unreachable"] and capped.budget == [0.5] and capped.ssim[0] > 0.5
    with pytest.raises(ValueError, match="strength knob"):
        attacks.at_ssim("dfb", make_unet(), 0.97, images=images, labels=labels)
    with pytest.raises(ValueError, match="target_ssim"):
        attacks.at_ssim("pgd", make_unet(), 1.0, images=images, labels=labels)


@pytest.mark.parametrize(("k", "power", "start"), [(10.0, 2.0, 16.0), (30.0, 2.0, 32.0), (90.0, 1.6, 0.5),
                                                     (300.0, 1.6, 2.0), (90.0, 2.0, 4.0)])
def test_three_levels_from_a_far_start_on_a_saturating_curve_take_at_most_six_runs(k, power, start):
    """Gaussian noise's kind of curve, (1 − SSIM)/SSIM = σ^p/k (quadratic at first, then saturating), started far on
    either side as a grid's middle budget often is (the search before this took 7–8 runs on these)."""
    run_at, ssim_of, calls = _synthetic(lambda b: 1 - b**power / (b**power + k))
    levels = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "std", [0.99, 0.97, 0.95], start=start)
    assert [lv.status for lv in levels] == ["reached"] * 3, levels
    assert all(lv.target <= lv.ssim <= lv.target + 0.002 for lv in levels)
    assert len(calls) <= 6


@pytest.mark.parametrize("name", ["gn", "saa"])
def test_three_levels_on_a_tiny_net_take_at_most_six_runs(name):
    from SpectrumAttackLib.inference.ssim_budget import attack_volume_at_ssim

    images, labels = random_batch(batch=1, size=16, seed=3)
    images = (0.5 + 0.2 * (images - 0.5)).clamp(0, 1)  # CT-like contrast: SSIM falls gradually with the budget
    params = {**FAST[name], "precision": "fp32", "seed": 1}
    found = attack_volume_at_ssim(name, make_unet(), images, labels, [0.99, 0.97, 0.95], params=params, roi=16)
    for result, level in found:
        assert level.status == "reached", level
        assert level.target <= volume_ssim(images[0, 0], result.adversarial[0, 0]) <= level.target + 0.002
    assert max(level.runs for _, level in found) <= 6


def test_a_flat_stretch_leaves_no_level_with_the_clean_image():
    """SA²'s SSIM measured on the sample CT (its own SSIM term holds it near 0.9497 for ρ 0.30–0.35): the runs are
    spent before every level is within the tolerance, but each level still gets an admissible attacked image."""
    measured = [(0.0349, 0.9911), (0.1, 0.9768), (0.13128, 0.97278), (0.1379, 0.9735), (0.1524, 0.9708),
                (0.29879, 0.95015), (0.31373, 0.9496), (0.32942, 0.94967), (0.3364, 0.9502), (0.34589, 0.94962),
                (0.4, 0.93978)]
    rho, ssim = torch.tensor([m[0] for m in measured]).log(), [m[1] for m in measured]

    def curve(b: float) -> float:  # piecewise linear in log ρ between the measured runs, slope 1 beyond them
        x = math.log(b)
        if x <= rho[0]:
            return 1 - (1 - ssim[0]) * math.exp(x - rho[0])
        if x >= rho[-1]:
            return 1 - (1 - ssim[-1]) * math.exp(x - rho[-1])
        i = int(torch.searchsorted(rho, torch.tensor(x)))
        w = (x - rho[i - 1]) / (rho[i] - rho[i - 1])
        return float(ssim[i - 1] + w * (ssim[i] - ssim[i - 1]))

    run_at, ssim_of, calls = _synthetic(curve)
    levels = search_levels(run_at, ssim_of, torch.zeros(1, 1, 1, 1, 1), "rho", [0.99, 0.97, 0.95], start=0.4)
    assert len(calls) <= 8
    for level in levels:
        assert level.budget > 0 and level.ssim >= level.target, level
    assert [lv.status for lv in levels].count("reached") >= 2
