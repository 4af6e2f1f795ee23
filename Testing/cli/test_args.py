"""The seed's flags: spelling, types, defaults, and their conversion into attack parameters."""

from __future__ import annotations

import argparse
import warnings

import pytest

from SpectrumAttackLib.cli.args import (
    add_seed_arguments,
    attack_params_from_args,
    flag_given,
    warn_ignored_flags,
)

# Every flag of seed-flags.md with its default (argparse dest → default).
SEED_DEFAULTS = {
    "use_pretrained": False, "pretrained_path": "", "resume": False, "resume_latest": False, "resume_best": False,
    "resume_but_restart": False, "logdir": "None", "data_dir": "None", "json_list": "None", "save_checkpoint": False,
    "max_epochs": 5000, "val_every": 100, "batch_size": 1, "sw_batch_size": 1, "optim_lr": 1e-4,
    "optim_name": "adamw", "reg_weight": 1e-5, "momentum": 0.99, "noamp": False, "lrschedule": "warmup_cosine",
    "warmup_epochs": 50, "distributed": False, "world_size": 1, "rank": 0, "dist_url": "tcp://127.0.0.1:23456",
    "dist_backend": "nccl", "workers": 8, "model_name": "None", "pos_embed": "perceptron", "norm_name": "instance",
    "num_heads": 12, "mlp_dim": 3072, "hidden_size": 768, "feature_size": 16, "in_channels": 1, "out_channels": 14,
    "res_block": False, "conv_block": False, "dropout_rate": 0.0, "dropout_path_rate": 0.0, "spatial_dims": 3,
    "use_checkpoint": False, "dataset": None, "use_normal_dataset": False, "a_min": -175.0, "a_max": 250.0,
    "b_min": 0.0, "b_max": 1.0, "space_x": 1.5, "space_y": 1.5, "space_z": 2.0, "roi_x": 96, "roi_y": 96,
    "roi_z": 96, "RandFlipd_prob": 0.2, "RandRotate90d_prob": 0.2, "RandScaleIntensityd_prob": 0.1,
    "RandShiftIntensityd_prob": 0.1, "smooth_dr": 1e-6, "smooth_nr": 0.0, "infer_overlap": 0.5,
    "attack_name": None, "steps": 20, "alpha": 0.01, "eps": 4, "std": 4, "targeted": False, "q_max": 20,
    "num_spectrum_augs": 10, "rho": 0.2, "use_ssim_loss": False, "lambda_dice": 0.01, "lambda_ce": 0.01,
    "lambda_ssim": 1, "block_size": [8, 8, 8], "freq_band": "all", "gen_train_adv_mode": False,
    "gen_val_adv_mode": False, "adv_training_mode": False, "freq_reg_mode": False, "adv_images_dir": "",
    "save_adv_images_dir": None, "save_model_dir": None, "no_sub_dir_model": False, "no_sub_dir_adv_images": False,
    "debugging": False, "exp_name": None,
}


def parser() -> argparse.ArgumentParser:
    return add_seed_arguments(argparse.ArgumentParser(prog="test"))


def parse(line: str) -> argparse.Namespace:
    return parser().parse_args(line.split())


def test_every_seed_flag_has_the_seed_default() -> None:
    args = vars(parse(""))
    for dest, default in SEED_DEFAULTS.items():
        assert dest in args, f"seed flag {dest} missing"
        assert args[dest] == default, dest
        assert type(args[dest]) is type(default), dest


def test_odd_seed_spellings_parse() -> None:
    args = parse("--dist-url tcp://10.0.0.1:1 --dist-backend gloo --RandFlipd_prob 0.5 --out_channels 4 "
                 "--block_size 16 16 16 --RandRotate90d_prob 0.3")
    assert args.dist_url == "tcp://10.0.0.1:1"
    assert args.dist_backend == "gloo"
    assert args.RandFlipd_prob == 0.5
    assert args.RandRotate90d_prob == 0.3
    assert args.out_channels == 4
    assert args.block_size == [16, 16, 16]


def test_seed_readme_spellings_parse() -> None:
    # The README writes --feature_size=16 and --out_channel 14 (an unambiguous prefix of --out_channels).
    args = parse("--feature_size=16 --out_channel 14 --infer_overlap=0.5 --json_list=dataset_synapse_18_12.json")
    assert (args.feature_size, args.out_channels, args.infer_overlap) == (16, 14, 0.5)
    assert args.json_list == "dataset_synapse_18_12.json"


def test_types_are_converted() -> None:
    args = parse("--eps 8 --steps 3 --alpha 0.02 --max_epochs 7")
    assert args.eps == 8.0 and isinstance(args.eps, float)
    assert args.steps == 3 and isinstance(args.steps, int)
    assert args.max_epochs == 7


def test_our_extra_flags_have_defaults() -> None:
    args = parse("")
    assert args.attack_mode == "tiles"
    assert args.device == "auto"
    assert args.seed == 0
    assert args.model is None
    assert args.metrics_preset == "paper"
    assert args.overwrite is False
    assert args.restarts == 1
    assert args.q_min is None and args.beta is None and args.vafa_variant is None


def test_saa_readme_flags_become_attack_parameters() -> None:
    args = parse("--attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        name, params = attack_params_from_args(args)
    assert name == "saa"
    assert params["block_size"] == (32, 32, 32)
    assert params["rho"] == 0.2 and params["steps"] == 20 and params["lambda_dice"] == 0.01
    assert params["use_ssim_loss"] is True
    assert params["seed"] == 0
    assert "alpha" not in params and "eps" not in params


def test_eps_and_std_stay_on_the_0_255_scale() -> None:
    _, params = attack_params_from_args(parse("--attack_name pgd --eps 4 --alpha 0.01 --steps 3"))
    assert params["eps"] == 4.0
    assert params["alpha"] == 0.01
    assert params["steps"] == 3


def test_alpha_with_saa_warns() -> None:
    with pytest.warns(UserWarning, match=r"--alpha has no effect with attack 'saa'"):
        _, params = attack_params_from_args(parse("--attack_name saa --alpha 0.5"))
    assert "alpha" not in params


def test_several_ignored_flags_named_in_one_warning() -> None:
    with pytest.warns(UserWarning, match=r"--eps, --alpha|--alpha, --eps"):
        attack_params_from_args(parse("--attack_name saa --eps 8 --alpha 0.5"))


def test_rho_with_pgd_warns() -> None:
    with pytest.warns(UserWarning, match=r"--rho has no effect with attack 'pgd'"):
        _, params = attack_params_from_args(parse("--attack_name pgd --rho 0.4"))
    assert "rho" not in params


def test_default_flags_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack_params_from_args(parse("--attack_name pgd"))
        attack_params_from_args(parse("--attack_name saa"))


def test_2d_attack_takes_two_block_entries() -> None:
    _, params = attack_params_from_args(parse("--attack_name saa-2d --block_size 32 32"))
    assert params["block_size"] == (32, 32)
    _, params = attack_params_from_args(parse("--attack_name saa-2d"))
    assert params["block_size"] == (8, 8)  # the seed default 8 8 8, cut to two entries


def test_extra_attack_flags_passed_only_when_given() -> None:
    _, params = attack_params_from_args(parse("--attack_name saa"))
    assert "beta" not in params
    _, params = attack_params_from_args(parse("--attack_name saa --beta 0.05 --restarts 2 --early_stop --seed 3"))
    assert params["beta"] == 0.05 and params["restarts"] == 2 and params["early_stop"] is True and params["seed"] == 3


def test_missing_attack_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="--attack_name"):
        attack_params_from_args(parse(""))


def test_unknown_attack_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="--attack_name"):
        attack_params_from_args(parse("--attack_name deepfool"))


def test_targeted_is_refused_on_the_command_line() -> None:
    with pytest.raises(ValueError, match="--targeted"):
        attack_params_from_args(parse("--attack_name pgd --targeted"))


def test_unknown_choice_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--attack_mode"):
        attack_params_from_args(parse("--attack_name pgd --attack_mode blocks"))
    with pytest.raises(ValueError, match="--freq_band"):
        attack_params_from_args(parse("--attack_name saa --freq_band hi"))


def test_flag_given_compares_with_the_default() -> None:
    args = parse("--max_epochs 10")
    assert flag_given(args, "max_epochs")
    assert not flag_given(args, "val_every")


def test_ignored_subcommand_flags_warn() -> None:
    args = parse("--max_epochs 10 --optim_lr 0.1 --rho 0.3")
    with pytest.warns(UserWarning, match=r"--max_epochs, --optim_lr have no effect with spectrum-attack attack"):
        ignored = warn_ignored_flags(args, used={"rho"}, command="attack")
    assert ignored == ["--max_epochs", "--optim_lr"]
