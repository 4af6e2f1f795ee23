"""``--precision`` on every subcommand that runs a model: parsed, passed through, refused when bad."""

from __future__ import annotations

import pytest

from SpectrumAttackLib.cli import cmd_attack, cmd_audit, cmd_demo, cmd_evaluate, cmd_train, cmd_transfer
from SpectrumAttackLib.cli.main import build_parser, main

#: subcommand → the flags it reads (a flag outside them is reported as having no effect).
READ_FLAGS = {
    "attack": cmd_attack.USED_FLAGS, "evaluate": cmd_evaluate.USED_FLAGS, "train": cmd_train.TRAIN_FLAGS,
    "transfer": cmd_transfer.USED_FLAGS, "demo": cmd_demo.USED_FLAGS, "audit": cmd_audit.USED_FLAGS,
}
REQUIRED = {"transfer": ["--models", "a", "b", "--output", "out"], "audit": ["--output", "out"]}


@pytest.mark.parametrize("command", sorted(READ_FLAGS))
def test_every_model_running_subcommand_takes_precision(command) -> None:
    parser = build_parser()
    assert parser.parse_args([command, *REQUIRED.get(command, [])]).precision == "auto"
    assert parser.parse_args([command, *REQUIRED.get(command, []), "--precision", "bf16"]).precision == "bf16"
    assert "precision" in READ_FLAGS[command]


@pytest.mark.parametrize("argv", [
    ["attack", "--attack_name", "pgd", "--save_adv_images_dir", "x"],
    ["evaluate", "--adv_images_dir", "x"],
    ["train", "--model_name", "unet"],
    ["transfer", "--models", "a", "b", "--output", "x", "--attack_name", "pgd"],
    ["demo"],
    ["audit", "--output", "x"],
])
def test_unknown_precision_is_one_line_naming_the_flag(argv, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--precision", "fp64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spectrum-attack: error: --precision must be one of 'auto', 'fp32', 'bf16', 'fp16', got 'fp64'."
    assert list(tmp_path.iterdir()) == []


def test_fp16_on_the_cpu_and_noamp_with_bf16_are_refused_before_any_output(capsys, tmp_path) -> None:
    out = tmp_path / "runs"
    assert main(["train", "--model_name", "unet", "--device", "cpu", "--precision", "fp16", "--save_checkpoint",
                 "--save_model_dir", str(out)]) == 2
    assert "--precision must be 'auto', 'fp32' or 'bf16' on cpu" in capsys.readouterr().err
    assert main(["train", "--model_name", "unet", "--noamp", "--precision", "bf16", "--save_model_dir", str(out)]) == 2
    assert "--precision must be 'auto' or 'fp32' with --noamp" in capsys.readouterr().err
    assert not out.exists()


def test_noamp_means_fp32() -> None:
    parser = build_parser()
    assert cmd_train.training_precision(parser.parse_args(["train", "--noamp"])) == "fp32"
    assert cmd_train.training_precision(parser.parse_args(["train"])) == "auto"
    assert cmd_train.training_precision(parser.parse_args(["train", "--precision", "bf16"])) == "bf16"
