"""``spectrum-attack attack`` and ``evaluate`` end to end on the synthetic blob dataset with the fitted UNet."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from cli_helpers import BLOB_AFFINE

from SpectrumAttackLib.precision import resolve_precision

SAA = "--attack_name saa --rho 0.5 --steps 10 --block_size 8 8 8 --lambda_dice 1"
SAA_DIR = "saa_rho0.5_steps10_block8x8x8_ld1"


@pytest.fixture(scope="module")
def attack_run(blob_data, tmp_path_factory):
    """One SA² attack run on the two validation cases (shared by the tests of this module)."""
    from SpectrumAttackLib.cli.main import main

    out = tmp_path_factory.mktemp("attack") / "adv"
    code = main(["attack", *blob_data.flags().split(), "--gen_val_adv_mode", "--save_adv_images_dir", str(out),
                 *SAA.split()])
    assert code == 0
    return out


def test_attack_writes_every_file_into_the_attack_sub_folder(attack_run) -> None:
    folder = attack_run / SAA_DIR
    assert sorted(p.name for p in attack_run.iterdir()) == [SAA_DIR]  # nothing else, no staging left behind
    expected = {f"img000{i}_{kind}" for i in (1, 2) for kind in (
        "adv.nii.gz", "perturbation.nii.gz", "pred_clean.nii.gz", "pred_adversarial.nii.gz", "report.png")}
    expected |= {"metrics.csv", "metrics.json", "manifest.json"}
    assert {p.name for p in folder.iterdir()} == expected


def test_saved_volumes_keep_the_source_geometry_and_types(attack_run, blob_data) -> None:
    folder = attack_run / SAA_DIR
    adv = nib.load(folder / "img0001_adv.nii.gz")
    source = nib.load(blob_data.data_dir / "imagesTr/img0001.nii.gz")
    assert adv.shape == source.shape
    np.testing.assert_allclose(adv.affine, BLOB_AFFINE, atol=1e-5)
    assert adv.get_data_dtype() == np.float32
    values = adv.get_fdata()
    assert values.min() >= 0.0 and values.max() <= 1.0
    clean = np.clip((source.get_fdata() + 175.0) / 425.0, 0, 1)
    delta = nib.load(folder / "img0001_perturbation.nii.gz").get_fdata()
    np.testing.assert_allclose(values - clean, delta, atol=1e-5)
    assert np.abs(delta).max() > 0
    for name in ("img0001_pred_clean.nii.gz", "img0001_pred_adversarial.nii.gz"):
        seg = nib.load(folder / name)
        assert seg.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
        np.testing.assert_allclose(seg.affine, BLOB_AFFINE, atol=1e-5)


def test_sa2_lowers_dice_and_metrics_are_in_range(attack_run) -> None:
    metrics = json.loads((attack_run / SAA_DIR / "metrics.json").read_text())
    assert metrics["num_cases"] == 2
    mean = metrics["mean"]
    assert mean["clean"]["dice"] > 0.8  # the fitted net segments the blobs
    assert mean["adversarial"]["dice"] < mean["clean"]["dice"] - 0.1
    assert 0.0 < mean["adversarial"]["fooling_rate"] <= 1.0
    assert 0.0 < mean["adversarial"]["ssim"] <= 1.0
    assert mean["adversarial"]["psnr"] > 10.0
    assert mean["adversarial"]["hd95"] >= 0.0
    for case in metrics["cases"]:
        assert 0.0 <= case["metrics"]["adversarial"]["dice"] <= 1.0
    rows = list(csv.DictReader((attack_run / SAA_DIR / "metrics.csv").open()))
    assert [r["case_id"] for r in rows] == ["img0001", "img0002", "mean"]
    assert float(rows[-1]["adversarial.dice"]) == pytest.approx(mean["adversarial"]["dice"])


def test_manifest_records_the_attack_and_flags(attack_run) -> None:
    manifest = json.loads((attack_run / SAA_DIR / "manifest.json").read_text())
    assert manifest["command"] == "attack"
    assert manifest["arguments"]["attack_name"] == "saa"
    assert manifest["arguments"]["block_size"] == [8, 8, 8]
    assert manifest["extra"]["attack"]["rho"] == 0.5
    assert manifest["extra"]["attack"]["block_size"] == [8, 8, 8]
    assert len(manifest["weights_sha256"]) == 64
    used = resolve_precision("auto", "cpu").name  # the default, resolved on this machine
    assert manifest["extra"]["precision"] == "auto" and manifest["extra"]["precision_used"] == used
    assert manifest["extra"]["attack"]["precision"] == "auto"
    metrics = json.loads((attack_run / SAA_DIR / "metrics.json").read_text())
    assert metrics["mean"]["precision_used"] == used


def test_evaluate_reproduces_the_attack_metrics(attack_run, blob_data, run_cli, tmp_path) -> None:
    code, out, err = run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {attack_run} {SAA} "
                             f"--output {tmp_path / 'eval'}")
    assert code == 0, err
    assert "img0001" in out and "img0002" in out
    evaluated = json.loads((tmp_path / "eval/metrics.json").read_text())["mean"]
    attacked = json.loads((attack_run / SAA_DIR / "metrics.json").read_text())["mean"]
    for section in ("clean", "adversarial"):
        assert evaluated[section]["dice"] == pytest.approx(attacked[section]["dice"], abs=1e-6)
    assert evaluated["adversarial"]["fooling_rate"] == pytest.approx(attacked["adversarial"]["fooling_rate"])
    assert {p.name for p in (tmp_path / "eval").iterdir()} == {"metrics.csv", "metrics.json", "manifest.json"}


def test_evaluate_with_other_attack_flags_names_the_missing_sub_folder(attack_run, blob_data, run_cli) -> None:
    code, _, err = run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {attack_run} --attack_name saa --rho 0.3")
    assert code == 2
    assert "--adv_images_dir" in err and "saa_rho0.3_steps20_block8x8x8_ld0.01" in err and SAA_DIR in err


def test_evaluate_without_sub_folder(attack_run, blob_data, run_cli) -> None:
    code, out, err = run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {attack_run / SAA_DIR} "
                             "--no_sub_dir_adv_images")
    assert code == 0, err
    assert "mean over 2 case(s)" in out


def test_no_sub_dir_writes_into_the_folder_and_refuses_a_second_run(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "flat"
    line = (f"attack {blob_data.flags()} --save_adv_images_dir {out} --no_sub_dir_adv_images "
            "--attack_name fgsm --eps 8")
    code, _, err = run_cli(line)
    assert code == 0, err
    assert (out / "img0001_adv.nii.gz").is_file() and (out / "metrics.json").is_file()
    before = (out / "metrics.json").stat().st_mtime_ns
    code, _, err = run_cli(line)
    assert code == 2
    assert err.startswith("spectrum-attack: error: --save_adv_images_dir") and "--overwrite" in err
    assert (out / "metrics.json").stat().st_mtime_ns == before
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(line + " --overwrite --eps 16")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite replaces results only
    assert json.loads((out / "manifest.json").read_text())["arguments"]["eps"] == 16.0


def test_debugging_writes_nothing(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "never"
    code, stdout, err = run_cli(f"attack {blob_data.flags()} --save_adv_images_dir {out} --debugging "
                                "--attack_name gn --std 8")
    assert code == 0, err
    assert not out.exists()
    assert "mean Dice" in stdout


def test_sliding_window_mode_and_training_split(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "sw"
    code, _, err = run_cli(f"attack {blob_data.flags()} --gen_train_adv_mode --attack_mode sliding-window "
                                f"--save_adv_images_dir {out} --attack_name pgd --eps 8 --steps 2")
    assert code == 0, err
    folder = out / "pgd_eps8_alpha0.01_steps2"
    assert sorted(p.name for p in folder.glob("*_adv.nii.gz")) == ["img0003_adv.nii.gz"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["extra"]["attack_mode"] == "sliding-window"


def test_ignored_flags_are_reported(blob_data, run_cli) -> None:
    with pytest.warns(UserWarning) as record:
        code, _, err = run_cli(f"attack {blob_data.flags()} --debugging --attack_name saa --steps 1 --alpha 0.5 "
                               "--block_size 8 8 8 --max_epochs 3")
    assert code == 0, err
    messages = [str(w.message) for w in record]
    assert any("--alpha has no effect with attack 'saa'" in m for m in messages)
    assert any("--max_epochs has no effect with spectrum-attack attack" in m for m in messages)
