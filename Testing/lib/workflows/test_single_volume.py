"""attack_single_volume end to end: a phantom CT in HU, a tiny trained UNet, inputs in several geometries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from workflow_helpers import CLASSES, SPACING, phantom_ct

from SpectrumAttackLib.io.volumes import Volume
from SpectrumAttackLib.runtime import Progress
from SpectrumAttackLib.workflows import Cancelled, SingleVolumeResult, attack_single_volume

HU_PER_UNIT = 425.0  # the −175..250 HU window mapped onto [0, 1]
PGD = {"eps": 8, "alpha": 0.01, "steps": 3}


def run(image, loaded, **kwargs) -> SingleVolumeResult:
    args = {"model": loaded, "attack": "pgd", "params": PGD, **kwargs}
    return attack_single_volume(image, **args)


def test_tiles_attack_end_to_end(loaded):
    hu, labels, affine = phantom_ct(5)
    hu_before, affine_before = hu.copy(), affine.copy()
    seen: list[Progress] = []
    result = run(Volume(hu, affine), loaded, reference_labels=labels, progress=seen.append)

    assert np.array_equal(hu, hu_before) and np.array_equal(affine, affine_before)
    assert result.adversarial.dtype == np.float32 and result.adversarial.shape == hu.shape
    assert np.array_equal(result.adversarial, hu + result.perturbation)
    bound = 8 / 255 * HU_PER_UNIT
    assert 1.0 < float(np.abs(result.perturbation).max()) <= bound * (1 + 1e-5)
    # the window clips air: a perturbation there is kept in HU but changes nothing the model sees end to end
    air = torch.from_numpy(hu < -400)
    grid = result.model_grid
    assert torch.equal(grid["adversarial"][0, 0][air], grid["clean"][0, 0][air])
    assert float((grid["attack_output"] - grid["clean"])[0, 0][air].abs().max()) > 0

    assert result.seg_clean.dtype == np.uint8 and result.seg_clean.shape == hu.shape
    assert result.seg_adv.dtype == np.uint8 and set(np.unique(result.seg_adv)) <= {0, 1, 2}
    clean, adv = result.metrics["clean"], result.metrics["adversarial"]
    assert result.metrics["reference"] == "labels"
    assert clean["dice"] > 0.6
    assert adv["dice"] < clean["dice"] - 0.05
    assert 0 < adv["fooling_rate"] == pytest.approx(float((result.seg_adv != result.seg_clean).mean()))
    assert result.metrics["seconds"] > 0 and result.seconds >= result.metrics["seconds"]

    assert [c["name"] for c in result.classes] == list(CLASSES) and result.classes[1]["id"] == 1
    config = result.attack_config
    assert config["attack"] == "pgd" and config["eps"] == 8 and config["attack_mode"] == "tiles"
    assert config["model"] == "tiny-phantom-unet" and config["roi"] == [16, 16, 16]
    assert config["perturbation_units_per_model_unit"] == pytest.approx(HU_PER_UNIT)

    assert grid["clean"].shape == (1, 1, *hu.shape) and grid["seg_adv"].dtype == torch.int64
    assert np.array_equal(grid["seg_clean"][0, 0].numpy(), result.seg_clean)  # identity mapping
    assert torch.equal(grid["labels"][0, 0], torch.from_numpy(labels))
    assert grid["spacing_mm"] == SPACING

    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[0].stage == "preprocess" and seen[-1].done == seen[-1].total
    assert [p.stage for p in seen].count("attack") == 1 + 4 // 4 * 3  # announce + one batch of 4 tiles × 3 steps
    assert {"preprocess", "inference", "attack", "metrics"} == {p.stage for p in seen}


def test_flipped_permuted_input_gives_the_same_result_in_its_own_grid(loaded):
    hu, labels, affine = phantom_ct(5)
    reference = run((hu, affine), loaded, reference_labels=labels)
    # the same scan stored with I reversed and the axes in K, I, J order
    flip = affine.copy()
    flip[:3, 3] = affine[:3, :3] @ [hu.shape[0] - 1, 0, 0] + affine[:3, 3]
    flip[:3, 0] *= -1
    order = (2, 0, 1)
    moved = np.transpose(hu[::-1], order).copy()
    moved_affine = flip.copy()
    moved_affine[:3, :3] = flip[:3, :3][:, list(order)]
    result = run((moved, moved_affine), loaded, reference_labels=np.transpose(labels[::-1], order))
    same = lambda a: np.transpose(a[::-1], order)  # noqa: E731
    assert np.array_equal(result.seg_clean, same(reference.seg_clean))
    assert np.array_equal(result.seg_adv, same(reference.seg_adv))
    np.testing.assert_allclose(result.perturbation, same(reference.perturbation), atol=1e-4)
    assert result.metrics["adversarial"]["dice"] == pytest.approx(reference.metrics["adversarial"]["dice"])


def test_anisotropic_input_is_attacked_on_the_model_grid(loaded):
    hu, labels, affine = phantom_ct(5)
    # the same phantom at 3 × 1.5 × 4 mm (every other voxel along I and K)
    coarse, coarse_labels = hu[::2, :, ::2].copy(), labels[::2, :, ::2].copy()
    coarse_affine = affine.copy()
    coarse_affine[0, 0], coarse_affine[2, 2] = 3.0, 4.0
    result = run((coarse, coarse_affine), loaded, reference_labels=coarse_labels, params={**PGD, "steps": 2})
    assert result.model_grid["mapping"].resampled
    assert result.model_grid["clean"].shape == (1, 1, 32, 32, 16)
    assert result.adversarial.shape == result.seg_adv.shape == coarse.shape
    assert float(np.abs(result.perturbation).max()) <= 8 / 255 * HU_PER_UNIT * (1 + 1e-5)
    assert result.metrics["adversarial"]["dice"] < result.metrics["clean"]["dice"]


def test_sliding_window_mode_without_reference_labels(loaded):
    hu, _, affine = phantom_ct(6)
    result = run((hu, affine), loaded, attack_mode="sliding-window", metrics_preset="paper")
    assert result.metrics["reference"] == "clean prediction"
    assert result.model_grid["labels"] is None
    assert result.metrics["clean"]["dice"] == pytest.approx(1.0)
    assert result.metrics["adversarial"]["dice"] < 0.95
    assert result.attack_config["attack_mode"] == "sliding-window"


def test_spectral_attack_runs_through_the_workflow(loaded):
    hu, labels, affine = phantom_ct(5)
    params = {"steps": 2, "rho": 0.4, "block_size": 8, "lambda_dice": 1.0}
    result = run((hu, affine), loaded, attack="saa", params=params, reference_labels=labels, seed=7,
                 precision="fp32")
    assert result.attack_config["attack"] == "saa" and result.attack_config["seed"] == 7
    assert result.attack_config["precision"] == result.metrics["precision"] == "fp32"
    assert result.attack_config["precision_used"] == result.metrics["precision_used"] == "fp32"
    assert float(np.abs(result.perturbation).max()) > 1.0
    assert result.metrics["adversarial"]["dice"] < result.metrics["clean"]["dice"]


def test_cancel_raises_and_leaves_the_model_alone(loaded):
    hu, _, affine = phantom_ct(5)
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) >= 4  # preprocess, inference, attack, then the first attack step

    weights = [p.clone() for p in loaded.model.parameters()]
    with pytest.raises(Cancelled):
        run((hu, affine), loaded, cancel=cancel)
    assert len(polls) == 4
    assert not loaded.model.training
    assert all(torch.equal(a, b) for a, b in zip(weights, loaded.model.parameters(), strict=True))


@pytest.mark.parametrize(("change", "name"), [
    ({"image": (np.zeros((32, 32), np.float32), np.eye(4))}, "image"),
    ({"image": (np.zeros((32, 32, 16, 3), np.float32), np.eye(4))}, "image"),
    ({"nan": True}, "image"),
    ({"reference_labels": np.zeros((32, 32, 8), np.int64)}, "reference_labels"),
    ({"reference_labels": np.full((32, 32, 16), 3, np.int64)}, "reference_labels"),
    ({"attack": "nope"}, "attack"),
    ({"params": {"eps": 300}}, "eps"),
    ({"params": {"seed": 1}}, "seed"),
    ({"attack_mode": "windows"}, "attack_mode"),
    ({"overlap": 1.0}, "overlap"),
    ({"metrics_preset": "fancy"}, "metrics_preset"),
    ({"precision": "int8"}, "precision must be one of"),
    ({"precision": "fp16"}, "precision must be 'auto', 'fp32' or 'bf16' on cpu"),
    ({"params": {"precision": "fp32"}}, r"params\['precision'\] must equal precision"),
])
def test_bad_input_is_named(loaded, change, name):
    hu, _, affine = phantom_ct(5)
    if change.pop("nan", False):
        hu[3, 4, 5] = np.nan
    args = {"image": (hu, affine), "model": loaded, "attack": "pgd", "params": PGD, **change}
    with pytest.raises(ValueError, match=name):
        attack_single_volume(args.pop("image"), **args)


def test_unknown_model_name_is_rejected():
    hu, _, affine = phantom_ct(5)
    with pytest.raises(ValueError, match="model"):
        attack_single_volume((hu, affine), model="no-such-model", attack="pgd", params=PGD)


def test_target_ssim_drives_the_budget_and_records_how(loaded):
    from SpectrumAttackLib.metrics.volume_ssim import volume_ssim

    hu, labels, affine = phantom_ct(5)
    result = run((hu, affine), loaded, reference_labels=labels, precision="fp32", target_ssim=0.97)
    record = result.metrics["target_ssim"]
    assert record["status"] in ("reached", "projected") and record["budget_name"] == "eps" and record["runs"] <= 8
    assert record["weight"] == 1 if record["status"] == "reached" else 0.9 <= record["weight"] < 1
    assert 0.97 <= record["ssim"] <= 0.972
    assert result.attack_config["eps"] == record["budget"]
    grid = result.model_grid
    assert volume_ssim(grid["clean"][0, 0].clamp(0, 1), grid["attack_output"][0, 0]) == pytest.approx(record["ssim"])
