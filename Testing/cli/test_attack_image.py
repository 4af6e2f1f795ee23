"""``attack --image`` writes on the input's own grid in its units; ``evaluate --image`` scores what it wrote; the
dataset commands' files stay the seed pipeline's model-grid files, byte for byte.

The single image is the blob dataset's first case stored upside down in LPS order (the first two axes reversed,
so the model's RAS grid is a flipped copy of it): files that came back in the model grid, or flipped, would not
overlay the input.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from cli_helpers import A_MAX, A_MIN

PGD = "--attack_name pgd --eps 8 --alpha 0.01 --steps 3"
PGD_DIR = "pgd_eps8_alpha0.01_steps3"
FILES = ("adv", "perturbation", "pred_clean", "pred_adversarial")


@pytest.fixture(scope="module")
def lps_case(blob_data, tmp_path_factory):
    """(image path, label path) of img0001 with its first two axes reversed and an LPS affine (same voxels in space)."""
    folder = tmp_path_factory.mktemp("lps")
    for kind, name in (("image", "imagesTr/img0001.nii.gz"), ("label", "labelsTr/label0001.nii.gz")):
        source = nib.load(blob_data.data_dir / name)
        flipped = np.asarray(source.dataobj)[::-1, ::-1].copy()
        affine = source.affine.copy()
        shape = flipped.shape
        affine[:3, 3] = source.affine[:3, :3] @ [shape[0] - 1, shape[1] - 1, 0] + source.affine[:3, 3]
        affine[:3, :2] *= -1
        nib.save(nib.Nifti1Image(flipped, affine), folder / f"{kind}.nii.gz")
    return folder / "image.nii.gz", folder / "label.nii.gz"


@pytest.fixture(scope="module")
def image_run(blob_data, lps_case, tmp_path_factory):
    from SpectrumAttackLib.cli.main import main

    image, label = lps_case
    out = tmp_path_factory.mktemp("attack-image") / "adv"
    flags = blob_data.flags().replace(f"--data_dir {blob_data.data_dir} --json_list split.json ", "")
    code = main(["attack", *flags.split(), "--image", str(image), "--label", str(label), "--save_adv_images_dir",
                 str(out), "--precision", "fp32", "--save_model_grid", *PGD.split()])
    assert code == 0
    return out / PGD_DIR, flags


def test_attack_image_writes_on_the_input_grid_in_its_units(image_run, lps_case) -> None:
    folder, _ = image_run
    source = nib.load(lps_case[0])
    hu = source.get_fdata()
    volumes = {kind: nib.load(folder / f"image_{kind}.nii.gz") for kind in FILES}
    for kind, volume in volumes.items():
        assert volume.shape == source.shape, kind
        np.testing.assert_allclose(volume.affine, source.affine, atol=1e-5)
    adversarial = volumes["adv"].get_fdata()
    perturbation = volumes["perturbation"].get_fdata()
    budget = 8 / 255 * (A_MAX - A_MIN)  # ε in [0, 1] units → HU
    assert np.abs(perturbation).max() > 1.0  # HU, not [0, 1] units
    assert np.abs(perturbation).max() <= budget + 1e-3
    np.testing.assert_allclose(adversarial, hu + perturbation, atol=1e-3)
    assert adversarial.min() >= hu.min() - budget - 1e-3 and adversarial.max() <= hu.max() + budget + 1e-3
    labels = np.asarray(nib.load(lps_case[1]).dataobj)
    clean = np.asarray(volumes["pred_clean"].dataobj)
    assert volumes["pred_clean"].get_data_dtype() == np.uint8
    organ = labels > 0
    dice = 2 * np.sum(organ & (clean > 0)) / (organ.sum() + (clean > 0).sum())
    assert dice > 0.6  # the clean prediction overlays the (flipped) labels: same grid, same orientation


def test_model_grid_files_only_when_asked(image_run, blob_data, lps_case, run_cli, tmp_path) -> None:
    folder, flags = image_run
    model_grid = nib.load(folder / "image_adv_model_grid.nii.gz")
    values = model_grid.get_fdata()
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert not np.allclose(model_grid.affine, nib.load(lps_case[0]).affine)  # RAS model grid, not the LPS input
    code, _, err = run_cli(f"attack {flags} --image {lps_case[0]} --save_adv_images_dir {tmp_path} "
                           f"--no_sub_dir_adv_images --precision fp32 {PGD}")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"image_{kind}.nii.gz" for kind in FILES] + ["image_report.png", "manifest.json", "metrics.csv",
                                                      "metrics.json"])


def test_evaluate_image_scores_what_attack_image_wrote(image_run, lps_case, run_cli, tmp_path) -> None:
    folder, flags = image_run
    code, _, err = run_cli(f"evaluate {flags} --image {lps_case[0]} --label {lps_case[1]} "
                           f"--adv_images_dir {folder.parent} --precision fp32 {PGD} --output {tmp_path / 'eval'}")
    assert code == 0, err
    evaluated = json.loads((tmp_path / "eval/metrics.json").read_text())["mean"]
    attacked = json.loads((folder / "metrics.json").read_text())["mean"]
    for section in ("clean", "adversarial"):
        assert evaluated[section]["dice"] == pytest.approx(attacked[section]["dice"], abs=1e-6)
    assert attacked["adversarial"]["dice"] < attacked["clean"]["dice"]


def test_evaluate_image_refuses_a_file_on_another_grid(image_run, run_cli, tmp_path) -> None:
    _, flags = image_run
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.full((9, 9, 9), -100, np.float32), np.eye(4)), other)
    (tmp_path / "adv").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((9, 9, 8), np.float32), np.eye(4)), tmp_path / "adv/other_adv.nii.gz")
    code, _, err = run_cli(f"evaluate {flags} --image {other} --adv_images_dir {tmp_path / 'adv'} "
                           f"--no_sub_dir_adv_images {PGD}")
    assert code == 2
    assert "--adv_images_dir file other_adv.nii.gz must lie on the grid of --image" in err


def test_dataset_attack_files_are_the_seed_pipelines_model_grid_byte_for_byte(blob_data, run_cli, tmp_path) -> None:
    """The dataset path, rebuilt here from its parts (the seed's MONAI transforms, the attack, the sliding-window
    prediction), gives exactly the arrays the command wrote: the case type did not change what it writes."""
    import argparse

    import torch

    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.cli.converters import data_config_from_args, model_from_args
    from SpectrumAttackLib.cli.main import build_parser
    from SpectrumAttackLib.data.transforms import eval_transforms
    from SpectrumAttackLib.inference.tiles import attack_volume
    from SpectrumAttackLib.pipeline.scoring import segment

    line = f"attack {blob_data.flags()} --gen_val_adv_mode --save_adv_images_dir {tmp_path} --precision fp32 {PGD}"
    code, _, err = run_cli(line)
    assert code == 0, err
    args: argparse.Namespace = build_parser().parse_args(line.split())
    loaded = model_from_args(args, "cpu")
    cfg = data_config_from_args(args, loaded.entry.preprocessing)
    transform = eval_transforms(cfg, with_label=True)
    for number in (1, 2):
        data = transform({"image": str(blob_data.data_dir / f"imagesTr/img000{number}.nii.gz"),
                          "label": str(blob_data.data_dir / f"labelsTr/label000{number}.nii.gz")})
        images = torch.as_tensor(data["image"]).float()[None]
        labels = torch.as_tensor(data["label"]).long()[None]
        attacker = attacks.create("pgd", loaded.model, precision="fp32", eps=8, alpha=0.01, steps=3, seed=0)
        adversarial = attack_volume(attacker, images, labels, roi=cfg.roi, mode="tiles", tile_batch_size=4,
                                    overlap=0.5, sw_batch_size=1).adversarial
        expected = {"adv": adversarial[0, 0].numpy(), "perturbation": (adversarial - images)[0, 0].numpy(),
                    "pred_clean": segment(loaded.model, images, cfg.roi, args)[0, 0].numpy(),
                    "pred_adversarial": segment(loaded.model, adversarial, cfg.roi, args)[0, 0].numpy()}
        for kind, array in expected.items():
            written = nib.load(tmp_path / PGD_DIR / f"img000{number}_{kind}.nii.gz")
            stored = np.asarray(written.dataobj)
            assert stored.tobytes() == array.astype(stored.dtype).tobytes(), kind
            np.testing.assert_array_equal(written.affine, np.asarray(data["image"].affine, dtype=np.float64))
