"""``spectrum-attack`` itself: subcommands, help, version, and the seed flags on every seed subcommand."""

from __future__ import annotations

import pytest
from cli_helpers import SEED_DEFAULTS

from SpectrumAttackLib import __version__
from SpectrumAttackLib.cli.main import COMMANDS, build_parser, main


def test_help_lists_every_subcommand(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    expected = {"attack", "evaluate", "train", "transfer", "audit", "demo", "sample-data", "harden", "serve", "analyze"}
    for command in expected:
        assert command in out
    assert set(COMMANDS) == expected


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"spectrum-attack {__version__}"


def test_no_subcommand_is_a_usage_error(capsys) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["attack", "evaluate", "train"])
def test_seed_subcommands_take_every_seed_flag_with_its_default(command) -> None:
    args = vars(build_parser().parse_args([command]))
    for dest, default in SEED_DEFAULTS.items():
        assert args[dest] == default, (command, dest)


def test_subcommand_help_shows_the_odd_seed_flags(capsys) -> None:
    assert main(["attack", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--dist-url", "--RandFlipd_prob", "--out_channels", "--block_size", "--attack_mode", "--model"):
        assert flag in out


def test_demo_defaults_are_the_readme_sa2_example() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.attack_name, args.rho, args.steps, args.block_size) == ("saa", 0.4, 10, [16, 16, 16])
    assert (args.lambda_dice, args.lambda_ssim, args.use_ssim_loss) == (0.2, 0.75, True)
    assert (args.model, args.case, args.output, args.metrics_preset) == ("unet-btcv-3mm", "img0001", "demo-output",
                                                                         "clinical")
    assert build_parser().parse_args(["demo", "--no_ssim_loss"]).use_ssim_loss is False


def test_transfer_requires_models_and_output(capsys) -> None:
    assert main(["transfer", "--attack_name", "pgd"]) == 2
    assert "--models" in capsys.readouterr().err



@pytest.mark.parametrize("command", ["demo", "audit", "sample-data"])
def test_our_subcommands_list_only_the_flags_that_act_in_them(command, capsys) -> None:
    required = ["--output", "x"] if command == "audit" else []
    assert main([command, *required, "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--max_epochs", "--optim_lr", "--RandFlipd_prob", "--save_model_dir", "--noamp", "--resume_best"):
        assert flag not in out, (command, flag)
    assert main([command, *required, "--max_epochs", "3"]) == 2
    assert "unrecognized arguments: --max_epochs 3" in capsys.readouterr().err


def test_demo_lists_its_attack_and_model_flags(capsys) -> None:
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--attack_name", "--rho", "--block_size", "--model", "--space_x", "--precision", "--case"):
        assert flag in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_prints_its_help(command, capsys) -> None:
    """Each subcommand's --help renders (a '%' in a parameter-table help text once broke `harden --help`)."""
    assert main([command, "--help"]) == 0
    assert f"spectrum-attack {command}" in capsys.readouterr().out
