"""The one table of attack parameters (``attacks.parameters``) against the engine and the command line.

The table is the source every front end derives from; these tests fail when a row disagrees with the attack
constructors (which attacks take it, default, offered range) or with the seed's flags of ``spectrum-attack``.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from attack_helpers import make_unet

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import (
    ATTACK_PARAMETERS,
    GENERAL_SETTINGS,
    KINDS,
    PARAMETERS,
    SLICER_PARAMETERS,
    Parameter,
    attack_ndim,
    by_engine,
    by_slicer,
    fit_block_size,
    parameters_of,
)
from SpectrumAttackLib.cli.args import ATTACK_FLAGS, EXTRA_FLAGS, SEED_FLAGS, add_seed_arguments, check_choices

FLAG_SPECS = {spec[0]: spec for spec in (*SEED_FLAGS, *EXTRA_FLAGS)}


def _engine_default(row: Parameter, attack: str) -> Any:
    default = row.parse(row.default) if row.default is not None else None
    return fit_block_size(default, attack_ndim(attack)) if row.kind == "block" else default


def test_rows_are_well_formed_and_names_unique() -> None:
    for names in ([p.engine for p in PARAMETERS], [p.flag for p in PARAMETERS], [p.slicer for p in SLICER_PARAMETERS]):
        assert len(names) == len(set(names))
    for row in PARAMETERS:
        assert row.kind in KINDS and row.label and row.help.endswith(".")
        assert (row.kind == "choice") == bool(row.choices)
        if row.default is not None:
            assert row.parse(row.default) == row.parse(str(row.default) if row.kind != "bool" else "false"
                                                       if not row.default else "true")
        if row.kind in ("int", "float", "block") and row.slicer:
            assert row.minimum is not None and row.maximum is not None and row.step
        if row.slicer:
            assert row.slicer[0].islower() and row.slicer.isidentifier()
        assert by_engine(row.engine) is row and (row.slicer is None or by_slicer(row.slicer) is row)
    assert set(GENERAL_SETTINGS).isdisjoint(ATTACK_PARAMETERS)


@pytest.mark.parametrize("attack", attacks.available())
def test_which_attacks_take_a_row_matches_the_constructors(attack: str) -> None:
    accepted = attacks.attack_parameters(attack)
    assert {p.engine for p in parameters_of(attack)} == {p.engine for p in ATTACK_PARAMETERS} & set(accepted)
    assert "seed" in accepted  # the general setting every attack takes
    assert getattr(attacks.attack_class(attack), "ndim", 3) == attack_ndim(attack)


@pytest.mark.parametrize("attack", attacks.available())
def test_one_default_the_constructors_use_it(attack: str) -> None:
    accepted = attacks.attack_parameters(attack)
    for row in (*parameters_of(attack), by_engine("seed")):
        assert accepted[row.engine] == _engine_default(row, attack), (attack, row.engine)


@pytest.mark.parametrize("row", [p for p in ATTACK_PARAMETERS if p.minimum is not None], ids=lambda p: p.engine)
def test_offered_bounds_are_accepted_by_every_attack_that_takes_the_row(row: Parameter) -> None:
    model = make_unet()
    for attack in row.attacks:
        for bound in (row.minimum, row.maximum):
            value = int(bound) if row.kind in ("int", "block") else bound
            if row.kind == "block":
                value = fit_block_size(value, attack_ndim(attack))
            attacks.create(attack, model, **{row.engine: value})


@pytest.mark.parametrize(("value", "ndim", "expected"), [
    (8, 3, (8, 8, 8)), (8, 2, (8, 8)), ((16,), 3, (16, 16, 16)), ((8, 8, 8), 2, (8, 8)), ((8, 4, 16), 3, (8, 4, 16)),
    ((8, 4), 2, (8, 4)), ((8, 4, 16), 2, (8, 4, 16)), ((8, 8), 3, (8, 8)),
])
def test_one_block_size_rule(value: Any, ndim: int, expected: tuple) -> None:
    assert fit_block_size(value, ndim) == expected


def test_a_block_the_rule_cannot_fit_is_refused_by_the_attack_naming_block_size() -> None:
    with pytest.raises(ValueError, match="block_size must have 2 entries"):
        attacks.create("saa-2d", make_unet(), block_size=fit_block_size((8, 4, 16), 2))


@pytest.mark.parametrize(("row", "given", "expected"), [
    ("steps", "7", 7), ("steps", 7.0, 7), ("rho", "0.3", 0.3), ("use_ssim_loss", "true", True),
    ("use_ssim_loss", False, False), ("block_size", "8, 8, 8", (8, 8, 8)), ("block_size", "16", (16,)),
    ("block_size", [4, 8], (4, 8)), ("freq_band", "low", "low"), ("device", "cuda:1", "cuda:1"),
    ("q_min", None, None),
])
def test_parse_converts_front_end_values(row: str, given: Any, expected: Any) -> None:
    assert by_engine(row).parse(given) == expected


@pytest.mark.parametrize(("row", "given", "message"), [
    ("steps", "ten", "steps must be an integer, got 'ten'"), ("steps", 2.5, "steps must be an integer"),
    ("steps", True, "steps must be an integer"), ("rho", "wide", "rho must be a number"),
    ("use_ssim_loss", "perhaps", "useSsimLoss must be true or false"),
    ("block_size", "8,x", "blockSize must be an integer or a list"), ("freq_band", "mid", "freqBand must be one of"),
    ("device", "gpu", "device must be one of 'auto', 'cpu', 'cuda' or match"), ("eps", None, "eps must be a number"),
])
def test_parse_errors_name_the_parameter(row: str, given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        by_engine(row).parse(given)


@pytest.mark.parametrize("row", PARAMETERS, ids=lambda p: p.engine)
def test_every_row_is_a_spectrum_attack_flag_with_the_same_default(row: Parameter) -> None:
    option, kind, _, nargs, _ = FLAG_SPECS[row.flag]
    assert kind is not None and option == row.flag
    parser = add_seed_arguments(argparse.ArgumentParser())
    parsed = getattr(parser.parse_args([]), row.dest)
    if row.kind == "block":
        assert nargs == "+" and fit_block_size(parsed, 3) == fit_block_size(row.default, 3)
    elif parsed is not None or row.flag in {spec[0] for spec in SEED_FLAGS}:
        assert parsed == row.default
    # else: one of our flags left unset (None): the attack's own default applies, which is the table's
    # (test_one_default_the_constructors_use_it)
    if row.kind == "choice" and row.attacks is not None:
        for choice in row.choices:
            check_choices(parser.parse_args([row.flag, choice]))
        with pytest.raises(ValueError, match=row.flag):
            check_choices(parser.parse_args([row.flag, "no-such-choice"]))


def test_attack_flags_are_the_table_rows() -> None:
    assert {**{p.dest: p.engine for p in ATTACK_PARAMETERS}, "seed": "seed"} == ATTACK_FLAGS
