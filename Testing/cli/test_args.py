"""The seed's flags: spelling, types, defaults, and their conversion into attack parameters."""

from __future__ import annotations

import argparse
import warnings

import pytest
from cli_helpers import SEED_DEFAULTS

from SpectrumAttackLib.cli.args import add_seed_arguments, flag_given, warn_ignored_flags
from SpectrumAttackLib.cli.converters import attack_params_from_args


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
    assert args.q_min is None and args.beta is None and args.vafa_variant is None  # the attack's (table's) default


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


def test_data_config_from_flags_and_from_a_model_preprocessing() -> None:
    from SpectrumAttackLib.cli.converters import data_config_from_args
    from SpectrumAttackLib.models.catalogue import Preprocessing

    seed = data_config_from_args(parse(""))
    assert seed.spacing == (1.5, 1.5, 2.0) and seed.roi == (96, 96, 96) and (seed.a_min, seed.a_max) == (-175, 250)
    assert seed.flip_prob == 0.2 and seed.dataset == "btcv"
    own = Preprocessing(spacing_mm=(3.0, 3.0, 3.0), a_min=-100.0, a_max=200.0, roi=(64, 64, 64))
    cfg = data_config_from_args(parse("--space_z 5 --roi_x 32"), own)
    assert cfg.spacing == (3.0, 3.0, 5.0)  # the model's own spacing, except the flag given
    assert cfg.roi == (32, 64, 64)
    assert (cfg.a_min, cfg.a_max) == (-100.0, 200.0)
    acdc = data_config_from_args(parse("--dataset acdc"))
    assert acdc.num_classes == 4
    with pytest.raises(ValueError, match="--dataset"):
        data_config_from_args(parse("--dataset brats"))
    with pytest.raises(ValueError, match="a_max"):
        data_config_from_args(parse("--a_min 300"))


def test_model_build_args_per_architecture() -> None:
    from SpectrumAttackLib.cli.converters import model_build_args

    arch, build = model_build_args(parse("--model_name unet-r --feature_size 8 --hidden_size 64 --num_heads 4 "
                                         "--mlp_dim 128 --pos_embed conv --roi_x 32 --roi_y 32 --roi_z 32"))
    assert arch == "unet-r"
    assert build == {"in_channels": 1, "spatial_dims": 3, "dropout_rate": 0.0, "roi": (32, 32, 32),
                     "feature_size": 8, "norm_name": "instance", "hidden_size": 64, "mlp_dim": 128,
                     "num_heads": 4, "pos_embed": "conv"}
    arch, build = model_build_args(parse("--model_name unet --unet_channels 4 8 16 --unet_strides 2 2"))
    assert build["channels"] == (4, 8, 16) and build["strides"] == (2, 2) and "num_res_units" not in build
    assert "feature_size" not in build
    arch, build = model_build_args(parse("--model_name swin-unetr --feature_size 24 --use_checkpoint"))
    assert build["feature_size"] == 24 and build["use_checkpoint"] is True
    assert model_build_args(parse(""))[0] is None
    assert model_build_args(parse(""), "unet-r")[0] == "unet-r"


def test_model_flag_errors_name_the_flag() -> None:
    from SpectrumAttackLib.cli.converters import model_build_args, model_from_args

    with pytest.raises(ValueError, match="--feature_size must be a multiple of 12"):
        model_build_args(parse("--model_name swin-unetr --feature_size 16"))
    with pytest.raises(ValueError, match="--model_name"):
        model_build_args(parse("--model_name resnet"))
    with pytest.raises(ValueError, match="--model_name"):
        model_from_args(parse(""), "cpu")
    with pytest.raises(ValueError, match="--pretrained_path"):
        model_from_args(parse("--model_name unet --use_pretrained"), "cpu")
    with pytest.raises(ValueError, match="--pretrained_path"):
        model_from_args(parse("--model_name unet"), "cpu")


def test_vafa_flags_of_ours() -> None:
    _, params = attack_params_from_args(parse("--attack_name vafa-3d --vafa_variant paper --q_min 2 --q_max 30"))
    assert params["variant"] == "paper" and params["q_min"] == 2.0 and params["q_max"] == 30.0
    _, params = attack_params_from_args(parse("--attack_name vafa-2d"))
    assert "variant" not in params and "q_min" not in params  # the attack's own defaults apply
    with pytest.warns(UserWarning, match="--vafa_variant has no effect with attack 'saa'"):
        attack_params_from_args(parse("--attack_name saa --vafa_variant paper"))
    with pytest.raises(ValueError, match="--vafa_variant"):
        attack_params_from_args(parse("--attack_name vafa-3d --vafa_variant best"))


def test_ssa_2d_takes_num_spectrum_augs_and_the_2d_block() -> None:
    name, params = attack_params_from_args(parse("--attack_name ssa-2d --num_spectrum_augs 4 --eps 8 --rho 0.5"))
    assert name == "ssa-2d"
    assert params["num_spectrum_augs"] == 4 and params["eps"] == 8.0 and params["rho"] == 0.5
    assert params["block_size"] == (8, 8) and "alpha" not in params
    _, params = attack_params_from_args(parse("--attack_name ssa-2d"))
    assert params["num_spectrum_augs"] == 10
