"""``spectrum-attack harden`` through the real command line, on the blob dataset and its fitted tiny UNet."""

from __future__ import annotations

import json

import pytest
import torch

from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.workflows.harden import harden

#: the fitted blob UNet described by the checkpoint flags, 1 mm voxels, the seed's window, 16³ crops.
MODEL = ("--model_name unet --unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 --out_channels 3 "
         "--space_x 1 --space_y 1 --space_z 1 --roi_x 16 --roi_y 16 --roi_z 16")
RUN = "--iterations 2 --steps 2 --device cpu --precision fp32 --seed 3"


def test_harden_writes_a_bundle_the_other_commands_take(blob_data, run_cli, tmp_path):
    out = tmp_path / "hard"
    code, stdout, stderr = run_cli(f"harden --model {blob_data.checkpoint} {MODEL} --training "
                                   f"{blob_data.data_dir / 'split.json'} {RUN} --output {out}")
    assert code == 0, stderr
    assert f"bundle written to {out}" in stdout and "validation Dice" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arguments"]["attack"] == "vafa-3d" and manifest["arguments"]["params"] == {"steps": 2}
    assert manifest["arguments"]["validation_cases"] == 2  # the split's validation list
    hardened = load_model(out, "cpu")
    assert hardened.entry.num_classes == 3 and hardened.entry.preprocessing.spacing_mm == (1.0, 1.0, 1.0)
    original = torch.load(blob_data.checkpoint, weights_only=True)["state_dict"]
    assert any(not torch.equal(v, original[k]) for k, v in hardened.model.state_dict().items())
    image = blob_data.data_dir / "imagesTr/img0001.nii.gz"
    code, stdout, stderr = run_cli(f"attack --model {out} --image {image} --attack_name gn --device cpu "
                                   f"--save_adv_images_dir {tmp_path / 'adv'}")
    assert code == 0, stderr  # the bundle is a --model of the other subcommands as it is


def test_command_line_and_python_api_are_one_code_path(blob_data, run_cli, tmp_path):
    images = " ".join(str(blob_data.data_dir / f"imagesTr/img000{n}.nii.gz") for n in (3,))
    labels = " ".join(str(blob_data.data_dir / f"labelsTr/label000{n}.nii.gz") for n in (3,))
    code, _, stderr = run_cli(f"harden --model {blob_data.checkpoint} {MODEL} --image {images} --label {labels} "
                              f"{RUN} --mode adversarial --attack_name pgd --eps 8 --output {tmp_path / 'cli'}")
    assert code == 0, stderr
    from SpectrumAttackLib.models.catalogue import Preprocessing

    arguments = {"architecture": "unet", "num_classes": 3, "channels": (4, 8, 16), "strides": (2, 2),
                 "num_res_units": 1, "roi": (16, 16, 16),
                 "preprocessing": Preprocessing(spacing_mm=(1.0, 1.0, 1.0), roi=(16, 16, 16))}
    api = harden([(images, labels)], blob_data.checkpoint, mode="adversarial", attack="pgd",
                 params={"steps": 2, "eps": 8.0}, iterations=2, output=tmp_path / "api", device="cpu",
                 precision="fp32", seed=3, model_arguments=arguments)  # fmt: skip
    cli_weights = torch.load(tmp_path / "cli" / "models" / "model.pt", weights_only=True)
    api_weights = torch.load(api.model_path / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(cli_weights[k], v) for k, v in api_weights.items())


@pytest.mark.parametrize(("flags", "message"), [
    ("--iterations 0", "iterations must be an integer in [1, inf], got 0."),
    ("--mode fgsm", "--mode must be one of 'vaft', 'adversarial', 'normal', got 'fgsm'."),
    ("--attack_name nope", "--attack_name must be one of"),
    ("--folds 0", "--folds applies to nnU-Net model folders only"),
    ("--steps many", "--steps must be an integer, got 'many'."),
    ("--image a.nii.gz b.nii.gz --label a.nii.gz", "--label must give one label map per --image image, got 2 images"),
])
def test_bad_flags_one_line_no_output(blob_data, run_cli, tmp_path, flags, message):
    source = "" if "--image" in flags else f"--training {blob_data.data_dir / 'split.json'}"
    code, _, stderr = run_cli(f"harden --model {blob_data.checkpoint} {MODEL} {source} {flags} --device cpu "
                              f"--output {tmp_path / 'out'}")
    assert code == 2 and stderr.startswith(f"spectrum-attack: error: {message}") and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_output_and_ignored_flags(blob_data, run_cli, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep")
    base = f"harden --model {blob_data.checkpoint} {MODEL} --training {blob_data.data_dir / 'split.json'}"
    code, _, stderr = run_cli(f"{base} --device cpu --output {tmp_path / 'out'}")
    assert code == 2 and "--output" not in stderr and "output must be a new or empty folder unless" in stderr
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep"
    with pytest.warns(UserWarning, match="flag --rho has no effect in --mode normal"):
        code, _, stderr = run_cli(f"{base} --mode normal --iterations 1 --rho 0.3 --device cpu "
                                  f"--output {tmp_path / 'n'}")
    assert code == 0, stderr


def test_the_documented_command_lines_parse():
    """Every ``spectrum-attack`` line of docs/hardening.md uses flags its subcommand has."""
    import re
    import shlex
    from pathlib import Path

    from SpectrumAttackLib.cli.main import build_parser

    page = (Path(__file__).resolve().parents[2] / "docs" / "hardening.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", page, flags=re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()
             if line.startswith("spectrum-attack ")]
    assert any(line.startswith("spectrum-attack harden ") for line in lines)
    parser = build_parser()
    for line in lines:
        words = shlex.split(re.sub(r'"\$\([^)]*\)"', "DATA", line))[1:]
        parser.parse_args(words)  # argparse exits on an unknown flag
