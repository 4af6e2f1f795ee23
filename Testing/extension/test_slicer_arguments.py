"""The one conversion of the Slicer side: parameter-node / console / CLI settings → engine arguments."""

from __future__ import annotations

from typing import Any

import pytest
from SpectrumAttackAdapter.arguments import EngineArguments, engine_arguments, summary_scalars

from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS

GUI_VALUES = {  # what the parameter node holds: a value for every parameter of every attack
    "steps": 7, "rho": 0.3, "blockSize": 16, "lambdaDice": 0.2, "useSsimLoss": True, "lambdaSsim": 0.75,
    "freqBand": "low", "qMax": 30.0, "vafaVariant": "paper", "eps": 8.0, "alpha": 0.02, "std": 6.0,
    "numSpectrumAugs": 4, "attackLoss": "js", "progressiveRadius": True, "decay": 0.5, "vmiSamples": 5,
    "vmiBeta": 2.0,
}


def _arguments(attack: str, strict: bool = False, **values: Any) -> EngineArguments:
    return engine_arguments({"model": "unet-btcv-3mm", "attack": attack, **values}, strict=strict)


def test_gui_values_keep_only_what_the_attack_takes() -> None:
    saa = _arguments("saa", **GUI_VALUES)
    assert saa.params == {"steps": 7, "rho": 0.3, "block_size": (16, 16, 16), "lambda_dice": 0.2,
                          "use_ssim_loss": True, "lambda_ssim": 0.75, "freq_band": "low"}
    assert _arguments("pgd", **GUI_VALUES).params == {"steps": 7, "eps": 8.0, "alpha": 0.02, "loss": "js"}
    assert _arguments("apgd", **GUI_VALUES).params == {"steps": 7, "eps": 8.0, "loss": "js",
                                                       "progressive_radius": True}
    vafa = _arguments("vafa-3d", **GUI_VALUES).params
    assert vafa["q_max"] == 30.0 and vafa["variant"] == "paper" and vafa["block_size"] == (16, 16, 16)
    assert "std" in _arguments("gn", **GUI_VALUES).params
    assert _arguments("ssa-2d", **GUI_VALUES).params == {"steps": 7, "rho": 0.3, "block_size": (16, 16), "eps": 8.0,
                                                         "num_spectrum_augs": 4}


def test_gui_values_cover_every_attack_row_of_the_table() -> None:
    assert set(GUI_VALUES) == {p.slicer for p in SLICER_PARAMETERS if p.attacks is not None}


def test_target_ssim_is_a_setting_of_the_run_not_an_attack_parameter() -> None:
    arguments = _arguments("saa", targetSsim="0.97", **GUI_VALUES)
    assert arguments.target_ssim == 0.97 and "target_ssim" not in arguments.params
    assert _arguments("saa", **GUI_VALUES).target_ssim == 0.0


def test_console_names_and_gui_names_give_the_same_arguments() -> None:
    by_engine = _arguments("saa", strict=True, steps=3, block_size=(8, 8, 8), lambda_dice=0.5, use_ssim_loss=False)
    by_gui = _arguments("saa", strict=True, steps="3", blockSize="8, 8, 8", lambdaDice="0.5", useSsimLoss="false")
    assert by_engine == by_gui


def test_engine_only_parameters_pass_through_the_console() -> None:
    assert _arguments("saa", strict=True, beta=0.05, restarts=2).params == {"beta": 0.05, "restarts": 2}


@pytest.mark.parametrize(("attack", "given", "expected"), [
    ("saa", 32, (32, 32, 32)),
    ("saa-2d", 32, (32, 32)),
    ("saa-2d", "32,32,32", (32, 32)),  # a cubic size given as three entries, used by a 2-D attack
    ("saa", "8,16,32", (8, 16, 32)),
    ("saa-2d", "8,16,32", (8, 16, 32)),  # not cubic: left for the attack to refuse, naming block_size
    ("dfb-2d", "12", (12, 12)),
])
def test_block_size_forms(attack: str, given: Any, expected: tuple) -> None:
    assert _arguments(attack, blockSize=given).params["block_size"] == expected


def test_strict_mode_refuses_a_parameter_the_attack_does_not_take() -> None:
    with pytest.raises(ValueError, match="parameter eps is not accepted by attack 'saa'"):
        _arguments("saa", strict=True, eps=4)


def test_unknown_names_are_refused_even_when_lenient() -> None:
    with pytest.raises(ValueError, match="parameter epsilon is not accepted by attack 'pgd'; allowed: steps, eps"):
        _arguments("pgd", epsilon=4)


@pytest.mark.parametrize(("values", "parameter"), [
    ({"steps": "ten"}, "steps must be an integer"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"useSsimLoss": "perhaps"}, "useSsimLoss must be true or false"),
    ({"blockSize": "8,x"}, "blockSize must be an integer or a list"),
    ({"block_size": "8,x"}, "block_size must be an integer or a list"),
    ({"rho": "wide"}, "rho must be a number"),
    ({"seed": -1}, "seed must be an integer in"),
    ({"numClasses": "many"}, "numClasses must be an integer"),
    ({"device": "gpu"}, "device must be one of"),
    ({"precision": "fp64"}, "precision must be one of 'auto', 'fp32', 'bf16', 'fp16'"),
    ({"lambdaDice": 0.1, "seed": 0, "precision": 3}, "precision must be one of"),
    ({"attack": "saa3d"}, "attack must be one of"),
    ({"model": ""}, "model must be a catalogue name"),
    ({"seed_value": 1}, "parameter seed_value"),
])
def test_bad_values_name_the_parameter(values: dict, parameter: str) -> None:
    settings = {"model": "unet-btcv-3mm", "attack": "saa", **values}
    with pytest.raises(ValueError, match=parameter):
        engine_arguments(settings, strict=False)


def test_none_values_are_ignored_and_architecture_kept() -> None:
    arguments = engine_arguments({"model": "ckpt.pt", "attack": "pgd", "architecture": "unet-r", "numClasses": 14,
                                  "eps": None, "device": "cuda:1", "seed": "5"}, strict=True)
    assert (arguments.architecture, arguments.num_classes, arguments.device, arguments.seed) == ("unet-r", 14,
                                                                                                 "cuda:1", 5)
    assert arguments.params == {}


@pytest.mark.parametrize("attack", ["saa", "vafa-3d", "pgd", "gn", "saa-2d", "ssa-2d"])
def test_cli_parameters_round_trip_through_the_cli_parser(cli_script: Any, attack: str) -> None:
    arguments = _arguments(attack, **GUI_VALUES, seed=3, device="cpu", precision="fp32")
    assert arguments.precision == "fp32" and arguments.cli_parameters()["precision"] == "fp32"
    argv = []
    for key, value in arguments.cli_parameters().items():
        if isinstance(value, bool):
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", str(value)]
    args = cli_script.build_parser().parse_args([*argv, "--inputVolume", "in.nrrd", "--outputVolume", "out.nrrd"])
    assert engine_arguments(cli_script._engine_values(args), strict=False) == arguments


def test_cli_parameters_refuse_what_the_cli_cannot_carry(tiny_loaded: Any) -> None:
    with pytest.raises(ValueError, match="model must be a catalogue name or a path"):
        engine_arguments({"model": tiny_loaded, "attack": "pgd"}, strict=True).cli_parameters()
    with pytest.raises(ValueError, match="params for a background run"):
        _arguments("saa", strict=True, beta=0.05).cli_parameters()
    with pytest.raises(ValueError, match="modelArguments"):
        _arguments("pgd", modelArguments={"channels": (4, 8)}).cli_parameters()


def test_summary_scalars_read_the_metrics_sections() -> None:
    metrics = {"clean": {"dice": 0.9}, "adversarial": {"dice": 0.4, "ssim": 0.97, "psnr": 33.0,
                                                       "fooling_rate": 0.3}}
    scalars = summary_scalars(metrics, 12.5)
    assert scalars == {"cleanDice": 0.9, "adversarialDice": 0.4, "ssim": 0.97, "psnr": 33.0, "foolingRate": 0.3,
                       "seconds": 12.5}
    assert all(v != v for k, v in summary_scalars({}, 1.0).items() if k != "seconds")  # NaN when undefined
