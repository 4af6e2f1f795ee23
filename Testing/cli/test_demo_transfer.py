"""``spectrum-attack demo`` and ``transfer`` end to end (synthetic blobs with the fitted UNet, and the sample CT)."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from cli_helpers import A_MAX, A_MIN, BLOB_AFFINE

from SpectrumAttackLib.models import build_model, save_checkpoint
from SpectrumAttackLib.models.catalogue import get_entry
from SpectrumAttackLib.resources import resource_dir

DEMO_FILES = {"adversarial.nii.gz", "perturbation.nii.gz", "segmentation_clean.nii.gz",
              "segmentation_adversarial.nii.gz", "report.png", "metrics.json", "manifest.json"}


def test_demo_on_blobs_lowers_dice_and_keeps_the_input_grid(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "demo-output"
    code, stdout, err = run_cli(f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0001 "
                                f"--output {out} --block_size 8 8 8 --steps 10 --rho 0.5 --lambda_dice 1")
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == DEMO_FILES
    source = nib.load(blob_data.data_dir / "imagesTr/img0001.nii.gz")
    adv = nib.load(out / "adversarial.nii.gz")
    assert adv.get_data_dtype() == np.float32 and adv.shape == source.shape
    np.testing.assert_array_equal(adv.affine, source.affine)
    delta = nib.load(out / "perturbation.nii.gz").get_fdata()
    np.testing.assert_allclose(adv.get_fdata() - source.get_fdata(), delta, atol=1e-3)  # HU
    assert 0 < np.abs(delta).max() <= A_MAX - A_MIN
    for name in ("segmentation_clean.nii.gz", "segmentation_adversarial.nii.gz"):
        seg = nib.load(out / name)
        assert seg.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(seg.affine, BLOB_AFFINE)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clean"]["dice"] > 0.8
    assert metrics["adversarial"]["dice"] < metrics["clean"]["dice"] - 0.1
    for key in ("hd95", "ssim", "psnr", "fooling_rate"):
        assert metrics["adversarial"][key] is not None
    assert 0 < metrics["adversarial"]["fooling_rate"] <= 1 and 0 < metrics["adversarial"]["ssim"] <= 1
    assert metrics["seconds"] >= metrics["attack_seconds"] > 0
    assert metrics["preset"] == "clinical" and metrics["case"] == "img0001"
    assert metrics["attack_config"]["rho"] == 0.5 and metrics["attack_config"]["use_ssim_loss"] is True
    for word in ("mean Dice", "HD95 [mm]", "SSIM", "PSNR", "fooling rate", "seconds"):
        assert word in stdout


def test_demo_uses_the_readme_sa2_settings_by_default(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "d"
    code, _, err = run_cli(f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0002 --output {out} "
                           "--roi_x 32 --roi_y 32 --roi_z 32 --steps 1")
    assert code == 0, err
    config = json.loads((out / "metrics.json").read_text())["attack_config"]
    assert config["attack"] == "saa"
    assert config["rho"] == 0.4 and config["lambda_dice"] == 0.2 and config["use_ssim_loss"] is True
    assert config["lambda_ssim"] == 0.75 and config["block_size"] == [16, 16, 16] and config["steps"] == 1
    with pytest.warns(UserWarning, match="--use_ssim_loss has no effect with attack 'pgd'"):
        code, _, err = run_cli(f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0002 "
                               f"--output {out} --overwrite --attack_name pgd --steps 1 --no_ssim_loss")
    assert code == 0, err
    config = json.loads((out / "metrics.json").read_text())["attack_config"]
    assert config["attack"] == "pgd" and "rho" not in config


def test_demo_on_the_sample_ct(sample_split, run_cli, tmp_path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model("unet", 14, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    checkpoint = save_checkpoint(tmp_path / "unet.pt", model)
    out = tmp_path / "demo-output"
    code, stdout, err = run_cli(
        f"demo --model {checkpoint} --model_name unet --unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 "
        f"--space_x 8 --space_y 8 --space_z 8 --roi_x 32 --roi_y 32 --roi_z 32 --block_size 16 16 16 --steps 2 "
        f"--output {out}"
    )
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == DEMO_FILES
    source = nib.load(sample_split.data_dir / "imagesTr/img0001.nii.gz")
    for name in ("adversarial.nii.gz", "perturbation.nii.gz", "segmentation_clean.nii.gz"):
        volume = nib.load(out / name)
        assert volume.shape == source.shape
        np.testing.assert_array_equal(volume.affine, source.affine)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["case"] == "img0001" and "liver" in metrics["clean"]["dice_per_class"]
    assert "Dice liver" in stdout


def test_default_demo_with_the_bundled_model(sample_split, run_cli, tmp_path) -> None:
    """``make demo`` with fewer steps: the catalogue model on img0001 (skipped until its weights exist)."""
    entry = get_entry("unet-btcv-3mm")
    if not entry.weights_path.is_file():
        pytest.skip(f"bundled weights {entry.weights} not in {resource_dir()} yet")
    out = tmp_path / "demo-output"
    code, stdout, err = run_cli(f"demo --output {out} --overwrite --steps 2")
    assert code == 0, err
    assert "Dice liver" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "unet-btcv-3mm" and metrics["clean"]["dice"] > 0.3
    assert metrics["adversarial"]["dice"] <= metrics["clean"]["dice"]


@pytest.fixture()
def blob_catalogue(blob_data, tmp_path, monkeypatch):
    """A resources folder whose catalogue holds the fitted blob UNet as ``blob-unet`` (1 mm, ROI 24)."""
    entry = {
        "name": "blob-unet", "architecture": "unet", "num_classes": 3,
        "arguments": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
        "classes": [{"id": i, "name": n, "rgb": [40 * i, 100, 200]} for i, n in enumerate(("background", "a", "b"))],
        "preprocessing": {"orientation": "RAS", "spacing_mm": [1, 1, 1], "a_min": A_MIN, "a_max": A_MAX,
                          "b_min": 0, "b_max": 1, "roi": [24, 24, 24]},
        "weights": str(blob_data.checkpoint),
    }
    (tmp_path / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    monkeypatch.setenv("SPECTRUMATTACK_RESOURCES", str(tmp_path))
    return tmp_path


def test_transfer_matrix_between_a_catalogue_model_and_a_checkpoint(blob_data, blob_catalogue, run_cli,
                                                                     tmp_path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        other = save_checkpoint(tmp_path / "random_unet.pt", build_model("unet", 3, channels=(4, 8, 16),
                                                                            strides=(2, 2), num_res_units=1))
    out = tmp_path / "transfer"
    data = f"--data_dir {blob_data.data_dir} --json_list split.json"
    with pytest.warns(UserWarning, match=r"random_unet.pt expects spacing \[1.5, 1.5, 2.0\] mm .* grid of the first"):
        code, stdout, err = run_cli(
            f"transfer --models blob-unet unet={other} --unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 "
            f"--out_channels 3 --roi_x 24 --roi_y 24 --roi_z 24 {data} --output {out} "
            "--attack_name pgd --eps 16 --alpha 0.02 --steps 5"
        )
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"transfer_matrix.csv", "transfer.json", "transfer_heatmap.png",
                                               "manifest.json"}
    rows = list(csv.reader((out / "transfer_matrix.csv").open()))
    assert rows[0] == ["source", "dice[blob-unet]", "dice[unet:random_unet.pt]", "dice_drop[blob-unet]",
                       "dice_drop[unet:random_unet.pt]"]
    assert [r[0] for r in rows[1:]] == ["clean", "blob-unet", "unet:random_unet.pt"]
    result = json.loads((out / "transfer.json").read_text())
    clean = result["clean_dice"]["blob-unet"]
    white_box = result["adversarial_dice"]["blob-unet"]["blob-unet"]
    assert clean > 0.8 and white_box < clean - 0.1
    assert result["dice_drop"]["blob-unet"]["blob-unet"] == pytest.approx(clean - white_box)
    for source in result["adversarial_dice"].values():
        assert all(0 <= v <= 1 for v in source.values())
    assert len(result["cases"]) == 2
    assert "blob-unet" in stdout
    png = (out / "transfer_heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_transfer_rejects_a_duplicate_model(blob_data, blob_catalogue, run_cli, tmp_path) -> None:
    code, _, err = run_cli(f"transfer --models blob-unet blob-unet --data_dir {blob_data.data_dir} "
                           f"--json_list split.json --output {tmp_path / 't'} --attack_name fgsm")
    assert code == 2 and "--models" in err
    assert not (tmp_path / "t").exists()
