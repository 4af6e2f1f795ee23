"""``spectrum-attack train``: the seed README's training commands on the sample data, at tiny sizes."""

from __future__ import annotations

import argparse
import csv
import shlex
import shutil

import pytest
import torch

from SpectrumAttackLib.cli import cmd_train
from SpectrumAttackLib.cli.main import build_parser, main
from SpectrumAttackLib.data.sample_data import SAMPLE_SPLIT, sample_data_path, sample_data_ready

# Tiny values for the README's flags (and a few more sizes): 2 epochs, 32³ crops at 8 mm, a small ViT.
TINY = ("--max_epochs 2 --val_every 1 --roi_x 32 --roi_y 32 --roi_z 32 --space_x 8 --space_y 8 --space_z 8 "
        "--feature_size 4 --hidden_size 32 --mlp_dim 64 --num_heads 2 --workers 0 --warmup_epochs 0 "
        "--sw_batch_size 4")

# The seed README's "Launch Adversarial Training of the Model" command, program name changed.
README_VAFT = (
    "spectrum-attack train --model_name unet-r --in_channels 1 --out_channel 14 --feature_size=16 --batch_size=3 "
    "--max_epochs 5000 --optim_lr=1e-4 --lrschedule=warmup_cosine --infer_overlap=0.5 --save_checkpoint "
    "--dataset btcv --data_dir={data} --json_list={split} --use_pretrained --pretrained_path={pretrained} "
    "--save_model_dir={out} --val_every 15 --adv_training_mode --freq_reg_mode "
    "--attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss"
)

# The same script for normal training ("do not mention these two arguments"), here from scratch.
README_NORMAL = (
    "spectrum-attack train --model_name unet-r --in_channels 1 --out_channel 14 --feature_size=16 --batch_size=3 "
    "--max_epochs 5000 --optim_lr=1e-4 --lrschedule=warmup_cosine --infer_overlap=0.5 --save_checkpoint "
    "--dataset btcv --data_dir={data} --json_list={split} --save_model_dir={out} --val_every 15"
)

needs_data = pytest.mark.skipif(not sample_data_ready(),
                                reason="sample data not built (run `spectrum-attack sample-data` or `make test`)")


def parse(line: str) -> argparse.Namespace:
    """Parse a ``spectrum-attack train ...`` line with the program's parser."""
    words = shlex.split(line)
    assert words[:2] == ["spectrum-attack", "train"]
    return build_parser().parse_args(words[1:])


def command(template: str, out, extra: str = "", **fields) -> argparse.Namespace:
    line = template.format(data=sample_data_path(), split=SAMPLE_SPLIT, out=out, **fields)
    return parse(f"{line} {TINY} {extra}")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A normal training run from scratch (the pretrained model of the VAFT command)."""
    out = tmp_path_factory.mktemp("runs")
    if sample_data_ready():
        assert cmd_train.run(command(README_NORMAL, out)) == 0
    return out


@needs_data
def test_readme_normal_training(clean_run, capsys):
    folder = clean_run / "normal"
    assert {p.name for p in folder.iterdir()} == {"model_best.pt", "model_latest.pt", "train_log.csv"}
    latest = torch.load(folder / "model_latest.pt", weights_only=True)
    assert latest["epoch"] == 2 and latest["config"]["mode"] == "normal"
    assert latest["config"]["roi"] == [32, 32, 32]


@needs_data
def test_readme_vaft_command(clean_run, tmp_path, capsys):
    pretrained = clean_run / "normal" / "model_best.pt"
    args = command(README_VAFT, tmp_path, "--steps 2", pretrained=pretrained)
    assert cmd_train.run(args) == 0
    folder = tmp_path / "vaft_saa_rho0.2_steps2_block32x32x32_ld0.01_ssim"
    latest = torch.load(folder / "model_latest.pt", weights_only=True)
    config = latest["config"]
    assert config["mode"] == "vaft" and config["attack_name"] == "saa"
    expected = {"rho": 0.2, "steps": 2, "block_size": [32, 32, 32], "lambda_dice": 0.01, "use_ssim_loss": True}
    assert {k: config["attack_params"][k] for k in expected} == expected
    assert "seed" not in config["attack_params"]  # the loop seeds every batch itself
    assert config["pretrained_path"] == str(pretrained)
    with (folder / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["loss_freq"]) > 0 and r["val_dice"] for r in rows)
    assert "best mean validation Dice" in capsys.readouterr().out


@needs_data
def test_existing_results_need_overwrite_or_resume(clean_run, tmp_path):
    shutil.copytree(clean_run / "normal", tmp_path / "normal")
    with pytest.raises(ValueError, match="--overwrite"):
        cmd_train.run(command(README_NORMAL, tmp_path))
    resumed = command(README_NORMAL, tmp_path, "--resume --max_epochs 3")
    assert cmd_train.run(resumed) == 0
    latest = torch.load(tmp_path / "normal" / "model_latest.pt", weights_only=True)
    assert latest["epoch"] == 3
    with (tmp_path / "normal" / "train_log.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3]


@needs_data
def test_debugging_writes_nothing(tmp_path):
    args = command(README_NORMAL, tmp_path / "out", "--debugging --max_epochs 1 --exp_name x")
    assert cmd_train.run(args) == 0
    assert not (tmp_path / "out").exists()


def test_freq_reg_needs_adv_training(tmp_path):
    args = parse(f"spectrum-attack train --model_name unet --freq_reg_mode --save_model_dir {tmp_path}")
    with pytest.raises(ValueError, match="--freq_reg_mode"):
        cmd_train.run(args)


def test_unknown_model_name(capsys):
    with pytest.raises(ValueError, match="--model_name"):
        cmd_train.run(parse("spectrum-attack train --model_name resnet"))
    assert main(["train", "--model_name", "resnet"]) == 2  # one line on stderr, no traceback
    assert capsys.readouterr().err.strip().startswith("spectrum-attack: error: --model_name must be one of")


def test_distributed_rank_outside_the_nodes():
    # Distributed runs themselves are tested in Testing/distributed.
    with pytest.raises(ValueError, match="--rank"):
        cmd_train.run(parse("spectrum-attack train --model_name unet --distributed --world_size 2 --rank 2"))


def test_catalogue_model_class_count():
    with pytest.raises(ValueError, match="--out_channels"):
        cmd_train.run(parse("spectrum-attack train --model unet-btcv-3mm --out_channels 4"))


def test_attack_flags_ignored_in_normal_training(tmp_path):
    args = parse("spectrum-attack train --model_name unet --rho 0.3 --freq_reg_mode")
    with pytest.warns(UserWarning, match="--rho"), pytest.raises(ValueError, match="--freq_reg_mode"):
        cmd_train.run(args)
