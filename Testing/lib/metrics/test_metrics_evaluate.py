"""compute_case_metrics against hand-computable cases, both presets, NaN handling and argument checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from metrics_volumes import SIZE, cube
from skimage.metrics import structural_similarity

from SpectrumAttackLib.metrics.evaluate import compute_case_metrics, overlap_per_class

N = SIZE**3
NAMES = ["background", "liver", "spleen"]


def metrics(images, seg_clean, seg_adv, **kwargs):
    clean, adv = images
    kwargs.setdefault("num_classes", 3)
    kwargs.setdefault("class_names", NAMES)
    return compute_case_metrics(clean, adv, seg_clean, seg_adv, **kwargs)


def test_dice_of_two_cubes_is_exact(images):
    labels = cube((4, 4, 4))
    shifted = cube((6, 4, 4))  # overlap 2·4·4 = 32 of 64 + 64 voxels → Dice 0.5
    m = metrics(images, labels, shifted, labels=labels)
    assert m["reference"] == "labels"
    assert m["clean"]["dice_per_class"] == {"liver": 1.0, "spleen": None}
    assert m["adversarial"]["dice_per_class"]["liver"] == pytest.approx(0.5, rel=1e-6)
    assert m["adversarial"]["dice"] == pytest.approx(0.5, rel=1e-6)  # spleen absent from both: skipped
    assert m["classes"] == ["liver", "spleen"]
    # the voxel counts behind the Dice, background included: 64 liver voxels each, 32 of them shared
    background = N - 64
    assert m["adversarial"]["voxel_counts"] == {"intersection": [background - 32, 32, 0],
                                                "prediction": [background, 64, 0], "reference": [background, 64, 0]}
    assert m["clean"]["voxel_counts"]["intersection"] == [background, 64, 0]


def test_paper_preset_includes_background(images):
    labels = cube((4, 4, 4))
    shifted = cube((6, 4, 4))
    m = metrics(images, labels, shifted, labels=labels, preset="paper")
    background = 2 * (N - 96) / (2 * (N - 64))  # background voxels in both: N minus the union of the two cubes
    per_class = m["adversarial"]["dice_per_class"]
    assert set(per_class) == {"background", "liver", "spleen"}
    assert per_class["background"] == pytest.approx(background, rel=1e-6)
    assert per_class["spleen"] is None  # absent from the reference: NaN in the reference code, skipped
    assert m["adversarial"]["dice"] == pytest.approx((background + 0.5) / 2, rel=1e-6)
    assert m["units"]["hd95"] == "voxels"
    assert "including background" in m["units"]["dice"]


def test_hallucinated_organ_scores_zero_in_clinical_and_is_skipped_in_paper(images):
    labels = cube((4, 4, 4))
    adv = labels.copy()
    adv[12:14, 12:14, 12:14] = 2  # spleen predicted, absent from the labels
    clinical = metrics(images, labels, adv, labels=labels)
    paper = metrics(images, labels, adv, labels=labels, preset="paper")
    assert clinical["adversarial"]["dice_per_class"]["spleen"] == 0.0
    assert clinical["adversarial"]["dice"] == pytest.approx(0.5)
    assert paper["adversarial"]["dice_per_class"]["spleen"] is None


@pytest.mark.parametrize("shift", [1, 3])
def test_hd95_of_shifted_cube_in_voxels_and_mm(images, shift):
    labels = cube((4, 4, 4), edge=6)
    shifted = cube((4 + shift, 4, 4), edge=6)
    spacing = (2.5, 1.0, 0.5)  # anisotropic: the shift runs along the 2.5 mm axis
    clinical = metrics(images, labels, shifted, labels=labels, spacing_mm=spacing)
    paper = metrics(images, labels, shifted, labels=labels, preset="paper", spacing_mm=spacing)
    assert clinical["adversarial"]["hd95_per_class"]["liver"] == pytest.approx(shift * 2.5)
    assert clinical["units"]["hd95"] == "mm"
    assert paper["adversarial"]["hd95_per_class"]["liver"] == pytest.approx(shift)
    assert clinical["clean"]["hd95_per_class"]["liver"] == 0.0


def test_hd95_along_other_axis_uses_that_axis_spacing(images):
    labels = cube((4, 4, 4), edge=6)
    shifted = cube((4, 4, 6), edge=6)  # shift of 2 voxels along D
    m = metrics(images, labels, shifted, labels=labels, spacing_mm=(2.5, 1.0, 0.5))
    assert m["adversarial"]["hd95"] == pytest.approx(1.0)


def test_empty_prediction_gives_null_hd95_and_zero_dice(images):
    labels = cube((4, 4, 4)) + cube((10, 10, 10), label=2)
    adv = cube((4, 4, 4))  # spleen missed entirely
    m = metrics(images, labels, adv, labels=labels)
    assert m["adversarial"]["dice_per_class"]["spleen"] == 0.0
    assert m["adversarial"]["hd95_per_class"]["spleen"] is None
    assert m["adversarial"]["hd95"] == 0.0  # the mean skips the undefined spleen distance
    assert m["adversarial"]["dice"] == pytest.approx(0.5)
    json.dumps(m, allow_nan=False)  # strict JSON: no NaN token anywhere


@pytest.mark.filterwarnings("ignore:the prediction of class 2 is all 0")
def test_paper_hd95_skips_an_erased_organ_where_the_reference_mean_was_infinite(images):
    """The reference's MONAI (0.9–1.2) gave HD95 = inf for a class empty in one map, so its nanmean was inf; the
    paper preset gives NaN there (as current MONAI does) and averages the defined classes (README)."""
    from monai.metrics import compute_hausdorff_distance

    labels = cube((4, 4, 4)) + cube((10, 10, 10), label=2)
    adv = cube((5, 4, 4))  # liver shifted by one voxel, spleen erased
    m = metrics(images, labels, adv, labels=labels, preset="paper")["adversarial"]
    assert m["hd95_per_class"]["spleen"] is None
    monai = compute_hausdorff_distance(
        torch.from_numpy(np.stack([adv == k for k in range(3)]))[None],
        torch.from_numpy(np.stack([labels == k for k in range(3)]))[None], include_background=True, percentile=95)
    assert math.isnan(float(monai[0, 2]))
    assert m["hd95"] == pytest.approx(float(np.nanmean(monai[0].numpy())))


def test_all_classes_undefined_gives_null_means(images):
    empty = np.zeros((SIZE,) * 3, dtype=np.int64)
    m = metrics(images, empty, empty)
    assert m["clean"]["dice"] is None and m["clean"]["hd95"] is None
    assert m["adversarial"]["fooling_rate"] == 0.0
    json.dumps(m, allow_nan=False)


def test_clean_prediction_is_the_reference_without_labels(images):
    seg = cube((4, 4, 4)) + cube((10, 10, 10), label=2)
    adv = cube((5, 4, 4)) + cube((10, 10, 10), label=2)
    m = metrics(images, seg, adv)
    assert m["reference"] == "clean prediction"
    assert "by definition" in m["reference_note"]
    assert m["clean"]["dice"] == 1.0 and m["clean"]["hd95"] == 0.0
    assert m["adversarial"]["dice_per_class"]["liver"] == pytest.approx(2 * 48 / 128, rel=1e-6)
    assert m["adversarial"]["dice_per_class"]["spleen"] == 1.0


def test_fooling_rate_counts_changed_voxels(images):
    seg = cube((4, 4, 4))
    adv = seg.copy()
    adv[0, 0, :5] = 2
    adv[4, 4, 4] = 0
    m = metrics(images, seg, adv, labels=seg)
    assert m["adversarial"]["fooling_rate"] == pytest.approx(6 / N)


def test_identical_images_ssim_one_psnr_null(images):
    clean, _ = images
    seg = cube((4, 4, 4))
    for preset in ("clinical", "paper"):
        m = compute_case_metrics(clean, clean.copy(), seg, seg, num_classes=3, preset=preset)
        assert m["adversarial"]["ssim"] == pytest.approx(1.0)
        assert m["adversarial"]["psnr"] is None
        assert "infinite" in m["adversarial"]["psnr_status"]


def test_psnr_of_constant_offset():
    clean = np.full((SIZE,) * 3, 0.5, dtype=np.float32)
    adv = clean + np.float32(0.1)  # MSE 0.01 → 20 dB at peak 1
    seg = cube((4, 4, 4))
    m = compute_case_metrics(clean, adv, seg, seg, num_classes=2)
    assert m["adversarial"]["psnr"] == pytest.approx(20.0, abs=1e-4)
    assert m["adversarial"]["psnr_status"] == "ok"


def test_ssim_definitions_per_preset(images):
    clean, adv = images
    seg = cube((4, 4, 4))
    paper = compute_case_metrics(clean, adv, seg, seg, num_classes=2, preset="paper")
    clinical = compute_case_metrics(clean, adv, seg, seg, num_classes=2)
    axial = structural_similarity(clean * 255.0, adv * 255.0, channel_axis=2, data_range=255)
    volume = structural_similarity(clean.astype(np.float64), adv.astype(np.float64), data_range=1.0)
    assert paper["adversarial"]["ssim"] == pytest.approx(axial, rel=1e-5)
    assert clinical["adversarial"]["ssim"] == pytest.approx(volume, rel=1e-9)
    assert paper["adversarial"]["ssim"] != pytest.approx(clinical["adversarial"]["ssim"], rel=1e-6)
    assert 0.0 < clinical["adversarial"]["ssim"] < 1.0


def test_ssim_unavailable_on_volumes_smaller_than_window():
    clean = np.full((16, 16, 5), 0.5, dtype=np.float32)
    seg = np.zeros(clean.shape, dtype=np.int64)
    clinical = compute_case_metrics(clean, clean, seg, seg, num_classes=2)
    paper = compute_case_metrics(clean, clean, seg, seg, num_classes=2, preset="paper")
    assert clinical["adversarial"]["ssim"] is None
    assert clinical["adversarial"]["ssim_status"].startswith("unavailable")
    assert paper["adversarial"]["ssim"] == pytest.approx(1.0)  # 2D over axial slices: only H and W must fit


class MeanAbsDistance(torch.nn.Module):
    """A real (if trivial) perceptual distance: mean |x0 − x1| per image, ``[N, 1, 1, 1]``."""

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return (x0 - x1).abs().mean(dim=(1, 2, 3), keepdim=True)


def test_lpips_with_a_given_model():
    clean = np.full((SIZE,) * 3, 0.5, dtype=np.float32)
    adv = clean + np.float32(0.1)  # 0.1 in [0, 1] is 0.2 in LPIPS's [-1, 1] input range
    seg = cube((4, 4, 4))
    m = compute_case_metrics(clean, adv, seg, seg, num_classes=2, lpips_model=MeanAbsDistance())
    assert m["adversarial"]["lpips"] == pytest.approx(0.2, rel=1e-5)
    assert m["adversarial"]["lpips_status"] == "ok"


def test_lpips_default_is_null_with_reason_when_unavailable(images):
    from SpectrumAttackLib.metrics.similarity import lpips_availability

    available, reason = lpips_availability()
    if available:
        pytest.skip("lpips and its AlexNet weights are installed here")
    seg = cube((4, 4, 4))
    m = metrics(images, seg, seg)
    assert m["adversarial"]["lpips"] is None
    assert m["adversarial"]["lpips_status"] == f"unavailable: {reason}"


def test_torch_inputs_with_batch_axes_match_numpy(images):
    clean, adv = images
    labels = cube((4, 4, 4))
    shifted = cube((6, 4, 4))
    as_numpy = metrics(images, labels, shifted, labels=labels)
    as_torch = compute_case_metrics(
        torch.from_numpy(clean)[None, None],
        torch.from_numpy(adv)[None, None],
        torch.from_numpy(labels)[None, None],
        torch.from_numpy(shifted).float()[None],  # whole-valued floats are accepted as labels
        labels=torch.from_numpy(labels),
        num_classes=3,
        class_names=NAMES,
    )
    assert as_torch == as_numpy


def test_overlap_per_class_matches_monai_dice_metric():
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    rng = np.random.default_rng(1)
    pred = rng.integers(0, 4, (SIZE,) * 3)
    ref = rng.integers(0, 3, (SIZE,) * 3)  # class 3 absent from the reference
    dice, _ = overlap_per_class(pred, ref, 4, preset="paper")
    metric = DiceMetric(include_background=True, reduction="none")
    expected = metric(one_hot(torch.from_numpy(pred)[None, None], 4), one_hot(torch.from_numpy(ref)[None, None], 4))
    np.testing.assert_allclose(dice, expected[0].numpy(), rtol=1e-6)
    assert math.isnan(dice[3])


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy")  # raised inside MONAI by its own call
def test_overlap_per_class_hd95_matches_monai_on_whole_volumes():
    """Scoring each class inside its bounding box must give MONAI's whole-volume HD95, also at the borders."""
    from monai.metrics import HausdorffDistanceMetric
    from monai.networks.utils import one_hot
    from scipy import ndimage

    rng = np.random.default_rng(2)

    def blobs() -> np.ndarray:  # smooth random regions of 4 classes, touching the volume borders
        field = ndimage.gaussian_filter(rng.standard_normal((SIZE, 20, 12)), 2)
        return np.digitize(field, [-0.1, 0.05, 0.15]).astype(np.int64)

    pred, ref = blobs(), blobs()
    spacing = (1.5, 1.0, 2.5)
    _, hd95 = overlap_per_class(pred, ref, 4, spacing_mm=spacing)
    metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    expected = metric(one_hot(torch.from_numpy(pred)[None, None], 4), one_hot(torch.from_numpy(ref)[None, None], 4),
                      spacing=list(spacing))
    np.testing.assert_allclose(hd95, expected[0].numpy(), rtol=1e-6)
    assert np.isfinite(hd95).all()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"preset": "reference"}, "preset"),
        ({"num_classes": 1}, "num_classes"),
        ({"class_names": ["background", "liver"]}, "class_names"),
        ({"class_names": ["a", "a", "b"]}, "class_names"),
        ({"spacing_mm": (1.0, 1.0)}, "spacing_mm"),
        ({"spacing_mm": (1.0, 0.0, 1.0)}, "spacing_mm"),
        ({"labels": np.zeros((SIZE, SIZE, 8), dtype=np.int64)}, "labels"),
        ({"labels": np.full((SIZE,) * 3, 3)}, "labels"),
    ],
)
def test_bad_arguments_name_the_parameter(images, kwargs, parameter):
    seg = cube((4, 4, 4))
    with pytest.raises(ValueError, match=parameter):
        metrics(images, seg, seg, **kwargs)


def test_bad_volumes_name_the_volume(images):
    clean, adv = images
    seg = cube((4, 4, 4))
    with pytest.raises(ValueError, match="adv_image"):
        compute_case_metrics(clean, adv + 0.5, seg, seg, num_classes=2)
    with pytest.raises(ValueError, match="seg_adv"):
        compute_case_metrics(clean, adv, seg, seg + 0.5, num_classes=2)
    with pytest.raises(ValueError, match="seg_clean"):
        compute_case_metrics(clean, adv, seg[:8], seg, num_classes=2)
    with pytest.raises(ValueError, match="clean_image"):
        compute_case_metrics(clean[None, None, :, :, 0], adv, seg, seg, num_classes=2)
    with pytest.raises(TypeError, match="seg_clean"):
        compute_case_metrics(clean, adv, seg.tolist(), seg, num_classes=2)


def test_a_clean_section_given_is_reused_and_the_rest_matches_a_full_computation(images):
    labels, clean_pred, adv_pred = cube((4, 4, 4)), cube((5, 4, 4)), cube((7, 4, 4))
    full = metrics(images, clean_pred, adv_pred, labels=labels, preset="clinical")
    reused = metrics(images, clean_pred, adv_pred, labels=labels, preset="clinical", clean_section=full["clean"])
    assert json.dumps(reused, sort_keys=True) == json.dumps(full, sort_keys=True)
    marked = metrics(images, clean_pred, adv_pred, labels=labels, clean_section={**full["clean"], "dice": 0.123})
    assert marked["clean"]["dice"] == 0.123  # taken as given, not computed again
