"""``spectrum-attack attack --model <nnU-Net folder>`` end to end: SA² and PGD on the real nnU-Net test model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nnunet_split(nnunet_ct: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the one-window sample crop as its only validation case."""
    root = tmp_path_factory.mktemp("nnunet-split")
    for folder, key in (("imagesTr", "small"), ("labelsTr", "small_labels")):
        (root / folder).mkdir()
        shutil.copy(nnunet_ct[key], root / folder / "img0001.nii.gz")
    split = {"validation": [{"image": "imagesTr/img0001.nii.gz", "label": "labelsTr/img0001.nii.gz"}]}
    (root / "split.json").write_text(json.dumps(split))
    return root


@pytest.mark.parametrize(("attack", "sub_dir"), [
    ("--attack_name saa --steps 1 --rho 0.2 --block_size 8 8 8", "saa_rho0.2_steps1_block8x8x8_ld0.01"),
    ("--attack_name pgd --steps 1 --eps 4", "pgd_eps4_alpha0.01_steps1"),
])
def test_attack_writes_hu_volumes_in_the_input_grid(run_cli, nnunet_model: Path, nnunet_split: Path,
                                                    tmp_path: Path, attack: str, sub_dir: str) -> None:
    out = tmp_path / "adv"
    code, stdout, _ = run_cli(f"attack --model {nnunet_model} --folds 0 --checkpoint final --data_dir {nnunet_split} "
                              f"--json_list split.json --gen_val_adv_mode --save_adv_images_dir {out} "
                              f"--attack_mode tiles --tile_batch_size 1 {attack}")
    assert code == 0
    (folder,) = out.iterdir()
    assert folder.name == sub_dir
    assert {p.name for p in folder.iterdir()} == {
        "img0001_adv.nii.gz", "img0001_perturbation.nii.gz", "img0001_pred_clean.nii.gz",
        "img0001_pred_adversarial.nii.gz", "img0001_report.png", "metrics.csv", "metrics.json", "manifest.json"}
    source = nib.load(nnunet_split / "imagesTr/img0001.nii.gz")
    adv = nib.load(folder / "img0001_adv.nii.gz")
    assert adv.shape == source.shape and adv.get_data_dtype() == np.float32
    np.testing.assert_allclose(adv.affine, source.affine, atol=1e-5)
    delta = nib.load(folder / "img0001_perturbation.nii.gz").get_fdata()
    np.testing.assert_allclose(adv.get_fdata(), source.get_fdata() + delta, atol=1e-2)  # HU
    assert np.abs(delta).max() > 1.0  # HU, not [0, 1] units
    assert nib.load(folder / "img0001_pred_clean.nii.gz").shape == source.shape
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["extra"]["model"]["architecture"] == "nnunet"
    assert manifest["extra"]["model"]["folds"] == ["0"]
    assert "img0001" in stdout


def test_nnunet_flags_need_an_nnunet_folder(run_cli, nnunet_split: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(f"attack --model unet-btcv-3mm --folds 0 --data_dir {nnunet_split} --json_list "
                           f"split.json --debugging --attack_name pgd --steps 1")
    assert code != 0 and "--folds apply to nnU-Net model folders only" in err


def test_commands_on_the_seed_pipeline_refuse_nnunet_folders(run_cli, nnunet_model: Path, nnunet_split: Path) -> None:
    code, _, err = run_cli(f"evaluate --model {nnunet_model} --data_dir {nnunet_split} --json_list split.json "
                           f"--adv_images_dir {nnunet_split} --no_sub_dir_adv_images")
    assert code != 0 and "--model must not be an nnU-Net model folder for this command" in err


def test_audit_runs_an_nnunet_folder_on_its_own_grid(run_cli, nnunet_model: Path, nnunet_split: Path,
                                                      tmp_path: Path) -> None:
    from SpectrumAttackLib.models import load_model
    from SpectrumAttackLib.workflows.robustness import audit

    grid = {"attacks": {"pgd": {"eps": [8], "params": {"steps": 1}}}}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    out = tmp_path / "audit"
    code, _, stderr = run_cli(f"audit --model {nnunet_model} --folds 0 --data_dir {nnunet_split} "
                              f"--json_list split.json --grid {tmp_path / 'grid.json'} --precision fp32 --output {out}")
    assert code == 0, stderr
    document = json.loads((out / "audit.json").read_text())
    (clean,) = document["clean"]
    (cell,) = document["cells"]
    # the same numbers as the Python API, whose cases are mapped by nnU-Net's own preprocessing
    api = audit(nnunet_split / "imagesTr/img0001.nii.gz", labels=nnunet_split / "labelsTr/img0001.nii.gz",
                models=load_model(nnunet_model, "cpu", folds=[0]), grid=grid, name="img0001", precision="fp32",
                device="cpu")
    assert clean["dice"] == pytest.approx(api.clean[0]["dice"], abs=1e-9)
    assert cell["dice"] == pytest.approx(api.cells[0]["dice"], abs=1e-6)
    assert cell["ssim_3d"] == pytest.approx(api.cells[0]["ssim_3d"], abs=1e-6)


def test_audit_refuses_monai_preprocessing_flags_with_an_nnunet_folder(run_cli, nnunet_model: Path,
                                                                       nnunet_split: Path, tmp_path: Path) -> None:
    code, _, stderr = run_cli(f"audit --model {nnunet_model} --folds 0 --data_dir {nnunet_split} "
                              f"--json_list split.json --a_min -100 --output {tmp_path / 'audit'}")
    assert code != 0
    assert "--a_min applies to MONAI models only" in stderr
    assert not (tmp_path / "audit").exists()
