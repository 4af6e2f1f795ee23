"""The seed README's attack and evaluate command lines, program name changed, on the sample CTs at tiny sizes.

Each line is the README's text with the placeholders filled in; the tiny settings (8 mm voxels, 32³ tiles, a small
ViT, 2 steps) are appended, so they override the README's values the way a user's later flag would.
"""

from __future__ import annotations

import json
import shlex
import warnings

import nibabel as nib
import numpy as np
import pytest
from cli_helpers import TINY

from SpectrumAttackLib.cli.main import main

# "Launch SAA Attack on the Model", generate_adv_samples.py → spectrum-attack attack.
README_ATTACK = (
    "spectrum-attack attack --model_name unet-r --feature_size=16 --infer_overlap=0.5 "
    "--dataset btcv --data_dir={data} "
    "--json_list={split} "
    "--use_pretrained "
    "--pretrained_path={model}  "
    "--gen_val_adv_mode "
    "--save_adv_images_dir={out} "
    "--attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss --debugging"
)
# "Inference on the Model with already saved Adversarial Images", inference_on_saved_adv_samples.py → evaluate.
README_EVALUATE = (
    "spectrum-attack evaluate --model_name unet-r --in_channels 1 --out_channel 14 --feature_size=16 "
    "--infer_overlap=0.5 "
    "--dataset btcv --data_dir={data} "
    "--json_list={split} "
    "--use_pretrained "
    "--pretrained_path={model}  "
    "--adv_images_dir={adv} "
    "--attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss"
)
README_SAA = "--attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss"
# The README's other attacks (SA²-2D, VAFA-3D/2D, PGD, FGSM, BIM, GN) and the sub-folder each one gets.
VARIANTS = {
    "saa-2d": ("--attack_name saa-2d --rho 0.2 --steps 20 --block_size 32 32 --lambda_dice 0.01 --use_ssim_loss",
               "saa-2d_rho0.2_steps2_block32x32_ld0.01_ssim"),
    "vafa-3d": ("--attack_name vafa-3d --q_max 20 --steps 20 --block_size 32 32 32 --use_ssim_loss",
                "vafa-3d_qmax20_steps2_block32x32x32_ssim"),
    "vafa-2d": ("--attack_name vafa-2d --q_max 20 --steps 20 --block_size 32 32 --use_ssim_loss",
                "vafa-2d_qmax20_steps2_block32x32_ssim"),
    "pgd": ("--attack_name pgd --steps 20 --eps 4 --alpha 0.01", "pgd_eps4_alpha0.01_steps2"),
    "fgsm": ("--attack_name fgsm --steps 20 --eps 4 --alpha 0.01", "fgsm_eps4"),
    "bim": ("--attack_name bim --steps 20 --eps 4 --alpha 0.01", "bim_eps4_alpha0.01_steps2"),
    "gn": ("--attack_name gn --steps 20 --eps 4 --alpha 0.01 --std 4", "gn_std4"),
}


def words(template: str, **fields) -> list[str]:
    """The README line with placeholders filled, tiny settings appended, the program name dropped."""
    line = shlex.split(template.format(**fields) + " " + TINY)
    assert line[0] == "spectrum-attack"
    return line[1:]


def fields(sample_split, **more) -> dict:
    return {"data": sample_split.data_dir, "split": sample_split.json_list, "model": sample_split.checkpoint, **more}


def test_readme_attack_line_with_debugging_writes_nothing(sample_split, tmp_path, capsys) -> None:
    out = tmp_path / "adv"
    assert main(words(README_ATTACK, **fields(sample_split, out=out))) == 0
    assert not out.exists()
    printed = capsys.readouterr().out
    assert "img0002" in printed and "mean Dice" in printed


@pytest.fixture(scope="module")
def saved_saa(sample_split, tmp_path_factory):
    """The README attack line without ``--debugging``: SA² images of the validation case."""
    out = tmp_path_factory.mktemp("readme") / "adv"
    line = README_ATTACK.replace(" --debugging", "")
    assert main(words(line, **fields(sample_split, out=out))) == 0
    return out


def test_readme_attack_saves_in_the_attack_sub_folder(saved_saa, sample_split) -> None:
    folder = saved_saa / "saa_rho0.2_steps2_block32x32x32_ld0.01_ssim"
    assert sorted(p.name for p in folder.glob("*_adv.nii.gz")) == ["img0002_adv.nii.gz"]
    adv = nib.load(folder / "img0002_adv.nii.gz")
    source = nib.load(sample_split.data_dir / "imagesTr/img0002.nii.gz")
    # the model grid: RAS, 8 mm voxels, placed where the source lies (after the foreground crop)
    np.testing.assert_allclose(np.abs(np.diag(adv.affine)[:3]), [8.0, 8.0, 8.0], atol=1e-4)
    corner = adv.affine @ np.array([0, 0, 0, 1.0])
    inside = np.linalg.solve(source.affine, corner)[:3]
    assert np.all(inside > -8) and np.all(inside < np.array(source.shape) + 8)
    metrics = json.loads((folder / "metrics.json").read_text())["mean"]
    for section in ("clean", "adversarial"):
        assert 0.0 <= metrics[section]["dice"] <= 1.0
    assert 0.0 < metrics["adversarial"]["ssim"] <= 1.0 and metrics["adversarial"]["fooling_rate"] >= 0.0


def test_readme_evaluate_line_finds_the_saved_images(saved_saa, sample_split, tmp_path, capsys) -> None:
    assert main([*words(README_EVALUATE, **fields(sample_split, adv=saved_saa)), "--output", str(tmp_path)]) == 0
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    attacked = json.loads((saved_saa / "saa_rho0.2_steps2_block32x32x32_ld0.01_ssim/metrics.json").read_text())
    assert [c["case_id"] for c in evaluated["cases"]] == ["img0002"]
    assert evaluated["mean"]["adversarial"]["dice"] == pytest.approx(attacked["mean"]["adversarial"]["dice"],
                                                                      abs=1e-6)
    assert "mean over 1 case(s)" in capsys.readouterr().out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_readme_attack_variants_then_evaluate(variant, sample_split, tmp_path) -> None:
    flags, folder_name = VARIANTS[variant]
    out = tmp_path / "adv"
    attack_line = README_ATTACK.replace(README_SAA, flags).replace(" --debugging", "")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert main(words(attack_line, **fields(sample_split, out=out))) == 0
    assert sorted(p.name for p in out.iterdir()) == [folder_name]
    assert [p.name for p in (out / folder_name).glob("*_adv.nii.gz")] == ["img0002_adv.nii.gz"]
    messages = " ".join(str(w.message) for w in record)
    if variant in ("fgsm", "gn"):  # one-shot attacks: the appended --steps 2 is reported, as in the seed quirk
        assert f"--steps has no effect with attack '{variant}'" in messages
    else:
        assert "no effect" not in messages
    evaluate_line = README_EVALUATE.replace(README_SAA, flags)
    assert main(words(evaluate_line, **fields(sample_split, adv=out))) == 0
