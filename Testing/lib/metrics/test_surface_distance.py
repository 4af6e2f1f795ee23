"""Dice and HD95 from the label maps (metrics.surface_distance) are MONAI's numbers bit for bit, as the audit
reported them before: noisy and smooth maps, classes touching the volume's border, empty classes, spacing that is
not a binary fraction and no spacing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance
from scipy import ndimage

from SpectrumAttackLib.metrics.evaluate import overlap_per_class
from SpectrumAttackLib.metrics.surface_distance import (
    nearest_distances,
    percentile_hausdorff,
    surface_voxels,
    voxel_counts,
)

SHAPE = (23, 17, 12)


def _maps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth reference (regions touching the borders) and a prediction with scattered wrong voxels, 4 classes."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2)
    reference = np.digitize(field, [-0.1, 0.05, 0.15]).astype(np.int64)
    pred = reference.copy()
    noisy = rng.random(SHAPE) < 0.15
    pred[noisy] = rng.integers(0, 4, int(noisy.sum()))
    return pred, reference


def _monai(pred: np.ndarray, reference: np.ndarray, k: int, spacing, ignore_empty: bool) -> tuple[float, float]:
    """What evaluate.py computed before: MONAI's Dice and HD95 of class k on the two whole maps."""
    p = torch.from_numpy(pred == k)[None, None]
    g = torch.from_numpy(reference == k)[None, None]
    dice = float(compute_dice(p, g, include_background=True, ignore_empty=ignore_empty)[0, 0])
    hd95 = float("nan")
    if bool(p.any()) and bool(g.any()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hd95 = float(compute_hausdorff_distance(p, g, include_background=True, percentile=95, directed=False,
                                                    spacing=spacing)[0, 0])
    return dice, hd95


@pytest.mark.parametrize("spacing", [(0.7, 1.3, 2.1), (1.5, 1.0, 2.5), None])
@pytest.mark.parametrize("seed", [0, 1])
def test_overlap_per_class_is_monai_bit_for_bit(spacing, seed):
    pred, reference = _maps(seed)
    for preset, ignore_empty in (("paper", True), ("clinical", False)):
        dice, hd95 = overlap_per_class(pred, reference, 4, preset=preset, spacing_mm=spacing)
        for k in range(4):
            expected_dice, expected_hd95 = _monai(pred, reference, k, None if spacing is None else list(spacing),
                                                  ignore_empty)
            np.testing.assert_array_equal(dice[k], expected_dice)
            np.testing.assert_array_equal(hd95[k], expected_hd95)
    assert np.isfinite(hd95).all()


def test_empty_classes_follow_monai_and_hd95_only_where_asked():
    pred, reference = _maps(3)
    pred[pred == 3] = 0  # class 3 erased by the "attack"
    reference[reference == 2] = 1  # class 2 absent from the reference, predicted anyway
    for preset, ignore_empty in (("paper", True), ("clinical", False)):
        dice, hd95 = overlap_per_class(pred, reference, 5, preset=preset, spacing_mm=(1.0, 1.0, 1.0))
        for k in range(4):
            expected_dice, expected_hd95 = _monai(pred, reference, k, [1.0, 1.0, 1.0], ignore_empty)
            np.testing.assert_array_equal(dice[k], expected_dice)
            np.testing.assert_array_equal(hd95[k], expected_hd95)
        assert np.isnan(dice[4]) and np.isnan(hd95[4])  # in neither map: undefined in both presets
    assert overlap_per_class(pred, reference, 4)[0][2] == 0.0  # clinical: a hallucinated organ scores 0
    _, hd95 = overlap_per_class(pred, reference, 4, hd95_classes=[1])
    assert np.isfinite(hd95[1]) and np.isnan(hd95[[0, 2, 3]]).all()


def test_surface_of_a_cube_at_the_border_and_a_hand_computed_distance():
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[0:3, 0:3, 0:3] = True  # touches three borders: outside the volume counts as empty
    assert len(surface_voxels(mask)) == 27 - 1  # only the centre voxel (1, 1, 1) keeps all six neighbours
    other = np.zeros_like(mask)
    other[0:3, 0:3, 3:6] = True  # the same cube shifted by 3 along D
    # the farthest surface voxels (D = 0 and D = 5) are 3 slices from the other cube's nearest one, 2 mm per slice
    distance = percentile_hausdorff(mask, other, (1.0, 1.0, 2.0), percentile=100)
    assert distance == pytest.approx(6.0)


@pytest.mark.parametrize("invalid", [False, True])
def test_voxel_counts_equal_per_class_masks(invalid):
    """The one-bincount confusion counts equal the per-class mask sums; values outside [0, K) count for no class."""
    pred, reference = _maps(5)
    if invalid:
        pred[0, 0, :3] = [-1, 4, 9]
        reference[1, 0, :2] = [7, -2]
    predicted, present, both = voxel_counts(pred, reference, 4)
    for k in range(4):
        assert predicted[k] == np.sum(pred == k) and present[k] == np.sum(reference == k)
        assert both[k] == np.sum((pred == k) & (reference == k))
    assert predicted.dtype == np.int64 and predicted.shape == (4,)


@pytest.mark.parametrize("spacing", [(0.7, 1.3, 2.1), None])
def test_distance_transform_and_kd_tree_give_the_same_distances(spacing):
    """The two nearest-surface searches agree on organ-like and on scattered surfaces (float32, as reported), and
    ``auto`` takes the distance transform for the scattered one (surfaces filling the box) only."""
    rng = np.random.default_rng(7)
    shape = (40, 36, 30)
    organ = np.zeros(shape, dtype=bool)
    organ[8:30, 6:28, 5:25] = True
    scattered = ndimage.gaussian_filter(rng.standard_normal(shape), 1) > 0.1
    scale = None if spacing is None else np.asarray(spacing)
    target = surface_voxels(organ)
    for mask in (organ[::-1], scattered):
        source = surface_voxels(mask)
        kd, edt = (nearest_distances(source, target, shape, scale, method) for method in ("kdtree", "edt"))
        np.testing.assert_array_equal(kd.astype(np.float32), edt.astype(np.float32))
        assert np.abs(kd - edt).max() <= 1e-12 * max(kd.max(), 1.0)
        chosen = nearest_distances(source, target, shape, scale)
        np.testing.assert_array_equal(chosen, edt if len(source) > 0.1 * organ.size else kd)
    assert len(surface_voxels(scattered)) > 0.1 * organ.size > len(surface_voxels(organ))
