"""Whole-volume attacks: the reference's tiling, averaging of overlaps, padding, sliding-window mode, cancel."""

from __future__ import annotations

import itertools

import pytest
import torch
from inference_helpers import NUM_CLASSES, SeedShift, make_unet, phantom

from SpectrumAttackLib import attacks
from SpectrumAttackLib.inference.sliding import predict_logits, window_count
from SpectrumAttackLib.inference.tiles import Cancelled, attack_volume, attack_work, tile_slices
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.runtime import Progress


def reference_starts(size: int, roi: int) -> list[int]:
    """The reference's tile starts along one axis: multiples of roi, the last one shifted back to end at the border."""
    starts = list(range(0, max(size - roi, 0) + 1, roi))
    if starts[-1] + roi < size:
        starts.append(size - roi)
    return starts


@pytest.mark.parametrize(("shape", "roi"), [((40, 32, 16), (16, 16, 16)), ((96, 100, 30), (32, 32, 16)),
                                            ((17, 16, 47), (16, 16, 16))])
def test_tiles_are_the_reference_slices(shape, roi):
    expected = [tuple(slice(s, s + r) for s, r in zip(starts, roi, strict=True))
                for starts in itertools.product(*(reference_starts(n, r) for n, r in zip(shape, roi, strict=True)))]
    assert tile_slices(shape, roi) == expected
    count = torch.zeros(shape)
    for s in expected:
        count[s] += 1
    assert bool((count >= 1).all())


def test_tiles_of_a_volume_smaller_than_roi_cover_the_padded_volume():
    assert tile_slices((10, 40, 12), (16, 16, 16)) == [
        (slice(0, 16), slice(s, s + 16), slice(0, 16)) for s in (0, 16, 24)
    ]


def test_overlapping_tiles_are_averaged_with_distinct_seeds():
    # Tile b (one per batch) gets +0.01·(1 + seed + b): every voxel must hold the mean over the tiles covering it.
    shape, roi = (24, 16, 20), (16, 16, 16)
    images = torch.full((1, 1, *shape), 0.5)
    labels = torch.zeros(1, 1, *shape, dtype=torch.long)
    attack = SeedShift(make_unet(), steps=1, seed=3)
    result = attack_volume(attack, images, labels, roi=roi, tile_batch_size=1)
    total = torch.zeros(shape)
    count = torch.zeros(shape)
    for b, s in enumerate(tile_slices(shape, roi)):
        total[s] += 0.5 + 0.01 * (1 + 3 + b)
        count[s] += 1
    assert result.tiles == 4
    assert float(count.max()) == 4  # corner voxels are covered by all four tiles
    torch.testing.assert_close(result.adversarial[0, 0], total / count)
    assert attack.seed == 3
    assert result.history["batch"] == [0, 1, 2, 3]


def test_volume_smaller_than_roi_is_padded_then_cropped():
    images, labels = phantom((10, 16, 12))
    attack = SeedShift(make_unet(), steps=1)
    result = attack_volume(attack, images, labels, roi=16)
    assert result.adversarial.shape == images.shape
    torch.testing.assert_close(result.adversarial, images + 0.01)


def test_pgd_tiles_respect_the_budget_and_leave_inputs_alone():
    images, labels = phantom((32, 24, 16))
    before = images.clone(), labels.clone()
    unet = make_unet()
    attack = attacks.create("pgd", unet, eps=8, alpha=0.01, steps=2, seed=0)
    seen = []
    result = attack_volume(attack, images, labels, roi=16, tile_batch_size=3, progress=seen.append)
    delta = result.adversarial - images
    assert float(delta.abs().max()) <= 8 / 255 + 1e-6
    assert float(delta.abs().max()) > 0
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0
    assert torch.equal(images, before[0]) and torch.equal(labels, before[1])
    assert result.adversarial.dtype == images.dtype
    assert unet.training
    total = attack_work(attack, images.shape[2:], 16, "tiles", 3)
    assert total == 2 * 2  # 4 tiles in 2 batches of 3, 2 steps each
    assert [p.done for p in seen] == list(range(1, total + 1))
    assert {p.total for p in seen} == {total} and seen[0].stage == "attack"
    assert len(result.history["loss"]) == total


def test_same_seed_same_volume_other_seed_other_volume():
    images, labels = phantom((24, 16, 16))
    unet = make_unet()
    run = lambda seed: attack_volume(attacks.create("pgd", unet, eps=8, steps=1, seed=seed),  # noqa: E731
                                     images, labels, roi=16).adversarial
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_sliding_window_attack_lowers_dice_of_the_evaluated_prediction():
    images, _ = phantom((32, 24, 16))
    unet = make_unet()
    clean = predict_logits(unet, images, roi=16, overlap=0.5).argmax(1, keepdim=True)
    assert len(clean.unique()) > 1
    attack = attacks.create("pgd", unet, eps=8, alpha=0.01, steps=4, random_start=False)
    result = attack_volume(attack, images, clean, roi=16, mode="sliding-window", overlap=0.5)
    assert result.tiles == window_count((32, 24, 16), (16, 16, 16), 0.5) == 3 * 2 * 1
    assert float((result.adversarial - images).abs().max()) <= 8 / 255 + 1e-6
    adv = predict_logits(unet, result.adversarial, roi=16, overlap=0.5).argmax(1, keepdim=True)
    dice = float(dice_per_sample(adv, clean, NUM_CLASSES))
    assert dice < 0.9
    assert attack.model is unet and unet.training
    losses = result.history["loss"]
    assert losses[-1] > losses[0]


def test_cancel_stops_between_steps_and_restores_the_model():
    images, labels = phantom((32, 32, 16))
    unet = make_unet()
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 3

    attack = attacks.create("pgd", unet, eps=4, steps=2)
    with pytest.raises(Cancelled):
        attack_volume(attack, images, labels, roi=16, tile_batch_size=1, cancel=cancel)
    assert len(polls) == 4  # batch 0: before, step 1, step 2; batch 1: before → stop
    assert unet.training and all(p.requires_grad for p in unet.parameters())
    with pytest.raises(Cancelled):
        attack_volume(attack, images, labels, roi=16, mode="sliding-window", cancel=lambda: True)


def test_progress_reports_in_sliding_window_mode():
    images, labels = phantom((16, 16, 16))
    seen: list[Progress] = []
    attack = attacks.create("pgd", make_unet(), eps=4, steps=3)
    attack_volume(attack, images, labels, roi=16, mode="sliding-window", progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"mode": "windows"}, "mode"),
    ({"tile_batch_size": 0}, "tile_batch_size"),
    ({"overlap": 1.5}, "overlap"),
    ({"roi": (16, 16)}, "roi"),
    ({"sw_batch_size": 0}, "sw_batch_size"),
])
def test_bad_settings_are_named(kwargs, name):
    images, labels = phantom((16, 16, 16))
    args = {"roi": 16, **kwargs}
    with pytest.raises(ValueError, match=name):
        attack_volume(SeedShift(make_unet()), images, labels, **args)


def test_bad_volumes_are_named():
    images, labels = phantom((16, 16, 16))
    attack = SeedShift(make_unet())
    with pytest.raises(ValueError, match="images"):
        attack_volume(attack, images.repeat(2, 1, 1, 1, 1), labels.repeat(2, 1, 1, 1, 1), roi=16)
    with pytest.raises(ValueError, match="labels"):
        attack_volume(attack, images, labels[:, :, :8], roi=16)
    with pytest.raises(ValueError, match="images"):
        attack_volume(attack, images[0], labels, roi=16)
