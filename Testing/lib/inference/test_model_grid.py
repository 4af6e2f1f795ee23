"""Mapping volumes to the model grid and back: identity, flips, permutations, oblique and anisotropic inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from SpectrumAttackLib.inference.geometry import (
    from_model_grid,
    labels_to_model_grid,
    to_model_grid,
    window_intensity,
)

WINDOW = {"a_min": -175.0, "a_max": 250.0}
SPACING = (1.5, 1.5, 2.0)


def ras_points(shape, affine) -> np.ndarray:
    """RAS coordinates ``[3, *shape]`` of the voxel centres of a grid."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).reshape(3, -1)
    return (affine[:3, :3] @ index + affine[:3, 3:4]).reshape(3, *shape)


def blobs(p: np.ndarray) -> np.ndarray:
    """A smooth CT-like scene in HU at RAS points ``p`` [3, ...] (mm): two Gaussian organs in soft tissue."""
    a = np.exp(-((p[0] - 4) ** 2 + (p[1] + 3) ** 2 + (p[2] - 2) ** 2) / (2 * 9.0**2))
    b = np.exp(-((p[0] + 12) ** 2 + (p[1] - 8) ** 2 + (p[2] + 6) ** 2) / (2 * 7.0**2))
    return (-100 + 300 * a + 200 * b).astype(np.float32)


def make_volume(shape=(24, 20, 12), spacing=SPACING, origin=(-17.0, -14.0, -11.0)):
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return blobs(ras_points(shape, affine)), affine


def flipped(array, affine, axis):
    """The same volume stored with axis ``axis`` reversed (array flipped, affine column negated)."""
    out = affine.copy()
    out[:3, 3] = affine[:3, :3] @ np.eye(3)[axis] * (array.shape[axis] - 1) + affine[:3, 3]
    out[:3, axis] *= -1
    return np.flip(array, axis).copy(), out


def permuted(array, affine, order):
    """The same volume stored with its axes in ``order``."""
    out = affine.copy()
    out[:3, :3] = affine[:3, :3][:, list(order)]
    return np.transpose(array, order).copy(), out


def test_identity_when_ras_with_model_spacing():
    array, affine = make_volume()
    images, mapping = to_model_grid(array, affine, spacing_mm=SPACING, **WINDOW)
    assert mapping.identity and not mapping.resampled
    assert images.shape == (1, 1, *array.shape) and images.dtype == torch.float32
    assert np.array_equal(images[0, 0].numpy(), window_intensity(array, -175, 250, 0, 1))
    assert np.array_equal(mapping.model_affine, affine)
    assert from_model_grid(images[0, 0], mapping, mode="linear").tobytes() == images[0, 0].numpy().tobytes()


def test_window_is_linear_and_clipped():
    values = np.array([[[-1000.0, -175.0, 37.5, 250.0, 3000.0]]])
    out = window_intensity(values, -175, 250, 0, 1)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert out.dtype == np.float32


@pytest.mark.parametrize("spacing", [SPACING, (1.0, 1.25, 1.5)])
def test_flipped_and_permuted_copies_give_the_same_model_tensor(spacing):
    array, affine = make_volume()
    reference, ref_mapping = to_model_grid(array, affine, spacing_mm=spacing, **WINDOW)
    copies = []
    for axes in itertools.chain.from_iterable(itertools.combinations(range(3), k) for k in (1, 2, 3)):
        a, m = array, affine
        for axis in axes:
            a, m = flipped(a, m, axis)
        copies.append((a, m))
    for order in itertools.permutations(range(3)):
        copies.append(permuted(array, affine, order))
        copies.append(permuted(*flipped(array, affine, 1), order))
    for a, m in copies:
        images, mapping = to_model_grid(a, m, spacing_mm=spacing, **WINDOW)
        assert mapping.model_shape == ref_mapping.model_shape
        np.testing.assert_allclose(mapping.model_affine, ref_mapping.model_affine, atol=1e-9)
        torch.testing.assert_close(images, reference, rtol=0, atol=1e-6)
        assert mapping.resampled == (spacing != SPACING)


def test_label_round_trip_is_exact_without_resampling():
    array, affine = make_volume()
    labels = np.digitize(array, [0, 80]).astype(np.int16)  # classes 0, 1, 2
    for a, m, lab in [
        (array, affine, labels),
        (*flipped(array, affine, 0), np.flip(labels, 0)),
        (*permuted(*flipped(array, affine, 2), (2, 0, 1)), np.transpose(np.flip(labels, 2), (2, 0, 1))),
    ]:
        _, mapping = to_model_grid(a, m, spacing_mm=SPACING, **WINDOW)
        model_labels = labels_to_model_grid(lab, mapping)
        assert model_labels.dtype == torch.int64 and model_labels.shape == (1, 1, *array.shape)
        assert torch.equal(model_labels[0, 0], torch.from_numpy(labels.astype(np.int64)))
        back = from_model_grid(model_labels[0, 0].numpy().astype(np.int16), mapping)
        assert back.dtype == np.int16 and np.array_equal(back, lab)


def test_anisotropic_input_is_resampled_to_the_model_spacing():
    array, affine = make_volume(shape=(40, 30, 8), spacing=(0.75, 1.0, 5.0), origin=(-15.0, -15.0, -18.0))
    images, mapping = to_model_grid(array, affine, spacing_mm=SPACING, **WINDOW)
    assert mapping.resampled
    assert mapping.model_shape == (20, 20, 20)  # extents 30, 30, 40 mm
    np.testing.assert_allclose(np.diag(mapping.model_affine)[:3], SPACING)
    # model-grid centre = input centre
    np.testing.assert_allclose(mapping.model_affine[:3] @ [9.5, 9.5, 9.5, 1], affine[:3] @ [19.5, 14.5, 3.5, 1])
    expected = window_intensity(blobs(ras_points(mapping.model_shape, mapping.model_affine)), -175, 250, 0, 1)
    inner = (slice(1, -1),) * 3
    # linear interpolation of a smooth scene along a 5 mm axis: a few per cent of the window at most
    assert np.abs(images[0, 0].numpy() - expected)[inner].max() < 0.05
    back = from_model_grid(images[0, 0], mapping, mode="linear")
    assert back.shape == array.shape and back.dtype == np.float32
    assert np.abs(back - window_intensity(array, -175, 250, 0, 1))[inner].max() < 0.05


def test_oblique_input_matches_the_axis_aligned_one():
    # The same scene sampled on a grid turned by 6° about S: the model grid is axis-aligned again, and its values
    # match the scene (which the identity mapping of the upright grid reproduces exactly) up to interpolation.
    angle = np.deg2rad(6.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    shape = (24, 20, 12)
    oblique = np.eye(4)
    oblique[:3, :3] = rotation @ np.diag(SPACING)
    oblique[:3, 3] = rotation @ [-17.0, -14.0, -11.0]
    images, mapping = to_model_grid(blobs(ras_points(shape, oblique)), oblique, spacing_mm=SPACING, **WINDOW)
    assert mapping.resampled
    np.testing.assert_allclose(mapping.model_affine[:3, :3], np.diag(SPACING))

    upright, upright_affine = make_volume(shape)
    reference, upright_mapping = to_model_grid(upright, upright_affine, spacing_mm=SPACING, **WINDOW)
    assert upright_mapping.identity
    assert np.array_equal(reference[0, 0].numpy(), window_intensity(upright, -175, 250, 0, 1))

    ras = ras_points(mapping.model_shape, mapping.model_affine)
    truth = window_intensity(blobs(ras), -175, 250, 0, 1)
    index = np.linalg.inv(oblique[:3, :3]) @ (ras.reshape(3, -1) - oblique[:3, 3:4])  # in the oblique grid
    size = np.array(shape)[:, None]
    inside = np.all((index >= 1) & (index <= size - 2), axis=0).reshape(mapping.model_shape)
    outside = np.any((index < -1.5) | (index > size + 0.5), axis=0).reshape(mapping.model_shape)
    assert inside.mean() > 0.5 and outside.any()
    model = images[0, 0].numpy()
    assert np.abs(model - truth)[inside].max() < 0.02  # linear interpolation error only
    assert np.all(model[outside] == 0.0)  # beyond the turned volume: the window minimum (air)


def test_other_model_orientation_flips_the_axes():
    array, affine = make_volume()
    ras, _ = to_model_grid(array, affine, spacing_mm=SPACING, **WINDOW)
    lps, mapping = to_model_grid(array, affine, spacing_mm=SPACING, orientation="LPS", **WINDOW)
    assert mapping.flips == (True, True, False) and not mapping.resampled
    assert torch.equal(lps, torch.flip(ras, (2, 3)))
    assert np.allclose(np.diag(mapping.model_affine)[:3], (-1.5, -1.5, 2.0))


def test_multichannel_volumes_map_back_channel_by_channel():
    array, affine = make_volume()
    a, m = permuted(*flipped(array, affine, 0), (1, 2, 0))
    images, mapping = to_model_grid(a, m, spacing_mm=(2.0, 2.0, 2.0), **WINDOW)
    stacked = torch.cat([images[0], 1 - images[0]])
    back = from_model_grid(stacked, mapping, mode="linear")
    assert back.shape == (2, *a.shape)
    np.testing.assert_allclose(back[1], 1 - back[0], atol=1e-6)


@pytest.mark.parametrize(("array", "affine", "kwargs", "name"), [
    (np.zeros((8, 8)), np.eye(4), {}, "image"),
    (np.zeros((8, 8, 8, 3)), np.eye(4), {}, "image"),
    (np.full((8, 8, 8), np.nan), np.eye(4), {}, "image"),
    (np.zeros((8, 8, 8)), np.diag([1.0, 0.0, 1.0, 1.0]), {}, "affine"),
    (np.zeros((8, 8, 8)), np.eye(3), {}, "affine"),
    (np.zeros((8, 8, 8)), np.eye(4), {"spacing_mm": (1.0, -1.0, 1.0)}, "spacing_mm"),
    (np.zeros((8, 8, 8)), np.eye(4), {"a_max": -200.0}, "a_max"),
    (np.zeros((8, 8, 8)), np.eye(4), {"b_max": 2.0}, "b_max"),
    (np.zeros((8, 8, 8)), np.eye(4), {"orientation": "RAR"}, "orientation"),
])
def test_bad_inputs_are_named(array, affine, kwargs, name):
    args = {"spacing_mm": SPACING, **WINDOW, **kwargs}
    with pytest.raises(ValueError, match=name):
        to_model_grid(array, affine, **args)


def test_bad_labels_and_volumes_are_named():
    array, affine = make_volume()
    _, mapping = to_model_grid(array, affine, spacing_mm=SPACING, **WINDOW)
    with pytest.raises(ValueError, match="labels"):
        labels_to_model_grid(np.zeros((4, 4, 4), np.int64), mapping)
    with pytest.raises(ValueError, match="labels"):
        labels_to_model_grid(np.full(array.shape, 0.5), mapping)
    with pytest.raises(ValueError, match="labels"):
        labels_to_model_grid(np.full(array.shape, -1), mapping)
    with pytest.raises(ValueError, match="volume"):
        from_model_grid(np.zeros((4, 4, 4)), mapping)
    with pytest.raises(ValueError, match="mode"):
        from_model_grid(np.zeros(array.shape), mapping, mode="cubic")
