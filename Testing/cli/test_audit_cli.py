"""``spectrum-attack audit``: the bundled model on the sample CT (``--image``/``--label``), a dataset split with
``--models``, and bad grids, presets and folders refused with one line naming the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpectrumAttackLib.data.sample_data import sample_data_path, sample_data_ready


def test_bad_grid_entry_is_one_error_line_naming_it(run_cli, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("attacks:\n  pgd: {eps: [4, 0]}\n")
    code, _, err = run_cli(f"audit --grid {grid} --model unet-btcv-3mm --output {tmp_path / 'out'}")
    assert code == 2
    assert err.strip() == "spectrum-attack: error: grid entry 'pgd': eps[1] must be > 0, got 0."
    code, _, err = run_cli(f"audit --preset fast --model unet-btcv-3mm --output {tmp_path / 'out'}")
    assert code == 2 and "--preset must be one of 'quick', 'standard', 'paper', 'sea', got 'fast'" in err
    code, _, err = run_cli(f"audit --preset paper --grid {grid} --model unet-btcv-3mm --output {tmp_path / 'o'}")
    assert code == 2 and "--grid must not be combined with --preset" in err
    assert not (tmp_path / "out").exists()


def test_audit_of_a_split_with_two_models(run_cli, blob_data, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"attacks": {"pgd": {"eps": [8], "params": {"steps": 2}}}}))
    checkpoint = blob_data.checkpoint
    flags = blob_data.flags().replace(f"--use_pretrained --pretrained_path {checkpoint}", "")
    code, out, err = run_cli(f"audit {flags} --models unet={checkpoint} {checkpoint} --grid {grid} "
                             f"--output {tmp_path / 'out'} --seed 3 --steps 3")
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "audit.json").read_text())
    models = document["summary"]["models"]
    assert len(models) == 2 and len(document["cells"]) == 2 * 2  # 2 validation cases x 2 models
    assert {c["case"] for c in document["cells"]} == {"img0001", "img0002"}
    # the same weights under two names: the same numbers
    first, second = (sorted((c["case"], c["dice"]) for c in document["cells"] if c["model"] == m) for m in models)
    assert first == second
    assert document["manifest"]["seed"] == 3 and document["manifest"]["arguments"]["seed"] == 3
    assert {c["params"]["steps"] for c in document["cells"]} == {3}  # --steps overrides the grid's steps
    assert document["manifest"]["models"][0]["weights_sha256"] is not None
    assert "results written to" in out
    code, _, err = run_cli(f"audit {flags} --models {checkpoint} --grid {grid} --output {tmp_path / 'out'}")
    assert code == 2 and "--output must not already hold results unless --overwrite" in err


def test_sea_preset_with_steps_and_ssim_levels(run_cli, blob_data, tmp_path):
    code, _, err = run_cli(f"audit {blob_data.flags()} --preset sea --steps 1 --ssim_levels 0.995 "
                           f"--output {tmp_path / 'out'} --precision fp32")
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "audit.json").read_text())
    cells = document["cells"]
    grid_cells = [c for c in cells if "ssim_level" not in c]
    assert len(grid_cells) == 2 * 3 * 2  # 2 cases x 3 losses x eps 4, 8
    assert {c["params"]["loss"] for c in grid_cells} == {"masked-ce", "balanced-masked-ce", "js"}
    assert {c["params"]["steps"] for c in cells} == {1}
    assert len([c for c in cells if "ssim_level" in c]) == 2 * 3  # a level unit per case and loss
    sea = document["summary"]["per_model"][document["summary"]["models"][0]]["ensembles"]["sea"]
    assert set(sea) == {"4", "8"} and all(entry["voxel_dice"] is not None for entry in sea.values())
    assert "SEA" in (tmp_path / "out" / "report.html").read_text()
    assert "audit " in err and "ETA" in err  # captured stderr is no terminal: one line per cell


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not sample_data_ready(), reason="sample data not built (run `spectrum-attack sample-data`)")
def test_robust_dice_of_the_bundled_model_falls_as_the_perceptibility_level_loosens(run_cli, tmp_path):
    import nibabel as nib

    root = sample_data_path()
    paths = {}
    for key, name in (("image", "imagesTr/img0001.nii.gz"), ("label", "labelsTr/label0001.nii.gz")):
        source = nib.load(root / name)  # the abdomen: the upper 56 of 112 axial slices (3 mm)
        affine = source.affine.copy()
        affine[:3, 3] += affine[:3, 2] * 56
        paths[key] = tmp_path / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(source.dataobj)[:, :, 56:], affine, source.header), paths[key])
    grid = tmp_path / "grid.yaml"
    grid.write_text("attacks:\n  pgd: {eps: [2], params: {steps: 2}}\n  dfb: {freq_band: [high]}\n")
    code, out, err = run_cli(f"audit --image {paths['image']} --label {paths['label']} --model unet-btcv-3mm "
                             f"--grid {grid} --output {tmp_path / 'out'}")
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "audit.json").read_text())
    own = document["summary"]["per_model"]["unet-btcv-3mm"]
    robust = [own["robust_dice"][level] for level in ("0.99", "0.95", "0.90")]
    assert own["clean_dice"] > 0.3  # a working model on this CT
    assert own["clean_dice"] >= robust[0] > robust[1] >= robust[2]
    pgd = next(c for c in document["cells"] if c["attack"] == "pgd")
    assert 0.90 <= pgd["ssim_3d"] < 0.99 and pgd["dice"] < own["clean_dice"]
    assert document["manifest"]["cases"][0]["name"] == "image"
    assert "SSIM>=0.99" in out


def test_corruption_track_from_the_command_line(run_cli, blob_data, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"attacks": {"gn": {"std": [8]}}}))
    code, out, err = run_cli(f"audit {blob_data.flags()} --grid {grid} --corruptions gamma blur "
                             f"--corruption_modality mr --output {tmp_path / 'out'}")
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "audit.json").read_text())
    track = [(c["case"], c["attack"], c["budget"]) for c in document["cells"] if c["kind"] == "corruption"]
    assert len(track) == 2 * 2 * 5 and {t[1] for t in track} == {"gamma", "blur"}
    assert {c["modality"] for c in document["cells"] if c["kind"] == "corruption"} == {"mr"}
    scores = next(iter(document["summary"]["per_model"].values()))["corruptions"]
    assert f"{scores['overall']:.3f}" in out and "Degradation" in out
    code, _, err = run_cli(f"audit {blob_data.flags()} --grid {grid} --corruptions snow --output {tmp_path / 'o'}")
    assert code == 2 and "grid corruption 'snow': corruption must be one of 'gaussian-noise'" in err
    code, _, err = run_cli(f"audit {blob_data.flags()} --grid {grid} --corruption_modality pet "
                           f"--output {tmp_path / 'o'}")
    assert code == 2 and "--corruption_modality must be one of 'auto', 'ct', 'mr', got 'pet'." in err


def test_audit_lists_only_the_flags_that_act_in_it(run_cli, capsys, tmp_path):
    """The seed's training and attack flags are not audit flags: not in --help, refused when given."""
    from SpectrumAttackLib.cli.main import main

    assert main(["audit", "--help"]) == 0
    help_text = capsys.readouterr().out
    for flag in ("--model", "--models", "--image", "--preset", "--grid", "--resume", "--space_x", "--precision",
                 "--steps", "--ssim_levels", "--corruptions"):  # --steps overrides the grid's steps
        assert flag in help_text
    for flag in ("--max_epochs", "--optim_lr", "--RandFlipd_prob", "--rho", "--save_model_dir", "--workers"):
        assert flag not in help_text
    assert len(help_text.splitlines()) < 200  # 293 when it listed every seed flag
    code, _, err = run_cli(f"audit --model unet-btcv-3mm --output {tmp_path / 'out'} --max_epochs 5")
    assert code == 2 and "unrecognized arguments: --max_epochs 5" in err
    assert not (tmp_path / "out").exists()

