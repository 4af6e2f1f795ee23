"""Audit grids: presets, YAML/JSON files, and one clear error naming each bad entry."""

from __future__ import annotations

import json

import pytest

from SpectrumAttackLib import attacks
from SpectrumAttackLib.audit.grid import BUDGET_PARAMETERS, PRESETS, grid_from_file, grid_from_mapping, resolve_grid


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_are_valid_grids_with_every_budget_parameter_the_attack_takes(preset):
    grid = resolve_grid(preset)
    assert grid.name == preset
    if preset != "sea":  # the families; sea is one ensemble of APGD runs (test_sea_preset_is_seas_ensemble)
        assert {"saa", "vafa-3d", "pgd", "gn", "dfb"} <= {e.attack for e in grid.attacks}
    for entry in grid.attacks:
        assert entry.budget_name in attacks.attack_parameters(entry.attack)
        assert len(entry.budgets) >= 2
        if not entry.categorical:
            assert list(entry.budgets) == sorted(entry.budgets)


def test_paper_preset_holds_the_published_settings():
    grid = {e.attack: e for e in resolve_grid("paper").attacks}
    assert grid["pgd"].budgets == (4, 8) and grid["pgd"].params["steps"] == 20
    assert grid["vafa-3d"].budgets == (20, 30) and grid["vafa-3d"].params["block_size"] == [32, 32, 32]
    assert {"segpgd", "cospgd"} <= set(grid)
    assert grid["dfb"].budgets == ("low", "middle", "high")


def test_every_budget_parameter_belongs_to_its_attack():
    for name, parameter in BUDGET_PARAMETERS.items():
        if name in attacks.available():
            assert parameter in attacks.attack_parameters(name), name


def test_yaml_and_json_files_give_the_same_grid(tmp_path):
    mapping = {"attacks": {"pgd": {"eps": [2, 4], "params": {"steps": 3}}, "dfb": {"freq_band": ["low"]}}}
    (tmp_path / "g.json").write_text(json.dumps(mapping))
    (tmp_path / "g.yaml").write_text("attacks:\n  pgd: {eps: [2, 4], params: {steps: 3}}\n"
                                     "  dfb:\n    freq_band: [low]\n")
    from_json, from_yaml = grid_from_file(tmp_path / "g.json"), grid_from_file(tmp_path / "g.yaml")
    assert from_json.attacks == from_yaml.attacks
    assert from_json.cells()[1][0].cell_params(4) == {"steps": 3, "eps": 4}
    assert from_yaml.name == "g.yaml"


@pytest.mark.parametrize(("mapping", "message"), [
    ({"attacks": {}}, "grid must be a mapping with the key 'attacks'"),
    ({"attacks": {"pgd": {"eps": [4]}}, "extra": 1}, "grid must be a mapping with the key 'attacks'"),
    ({"attacks": {"nope": {"eps": [4]}}}, "grid entry 'nope': attack must be one of"),
    ({"attacks": {"pgd": {"rho": [0.2]}}}, "grid entry 'pgd': keys must be 'eps'"),
    ({"attacks": {"pgd": {"eps": []}}}, "grid entry 'pgd': eps must be a non-empty list"),
    ({"attacks": {"pgd": {"eps": [4, -1]}}}, "grid entry 'pgd': eps[1] must be > 0, got -1"),
    ({"attacks": {"pgd": {"eps": [4, "big"]}}}, "grid entry 'pgd': eps[1] must be a number, got 'big'"),
    ({"attacks": {"pgd": {"eps": [4, 4]}}}, "grid entry 'pgd': eps must list each budget once"),
    ({"attacks": {"saa": {"rho": [0.2, 1.5]}}}, "grid entry 'saa': rho[1] = 1.5: rho must be"),
    ({"attacks": {"dfb": {"freq_band": ["low", "top"]}}}, "grid entry 'dfb': freq_band[1] = 'top': freq_band must"),
    ({"attacks": {"pgd": {"eps": [4], "params": {"stepz": 3}}}}, "grid entry 'pgd': eps[0] = 4: parameter stepz"),
    ({"attacks": {"pgd": {"eps": [4], "params": {"eps": 3}}}}, "grid entry 'pgd': params must not set 'eps'"),
    ({"attacks": {"pgd": {"eps": [4], "params": {"seed": 3}}}}, "grid entry 'pgd': params must not set 'seed'"),
])
def test_bad_entries_give_one_error_naming_the_entry(mapping, message):
    with pytest.raises(ValueError) as info:
        grid_from_mapping(mapping)
    assert str(info.value).startswith(message), str(info.value)


def test_bad_files_and_presets_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--grid must be an existing YAML or JSON file"):
        grid_from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="--grid must be valid JSON"):
        grid_from_file(tmp_path / "bad.json")
    (tmp_path / "grid.txt").write_text("attacks: {}")
    with pytest.raises(ValueError, match="--grid file ending must be one of"):
        grid_from_file(tmp_path / "grid.txt")
    with pytest.raises(ValueError, match="preset must be one of 'quick', 'standard', 'paper'"):
        resolve_grid("fast")


def test_sea_preset_is_seas_ensemble():
    grid = resolve_grid("sea")
    assert [e.name for e in grid.attacks] == ["apgd-masked-ce", "apgd-balanced-masked-ce", "apgd-js"]
    for entry in grid.attacks:
        assert entry.attack == "apgd" and entry.ensemble == "sea" and entry.budgets == (4, 8)
        assert entry.params == {"loss": entry.name[5:], "steps": 300, "progressive_radius": True}
    mapping = grid.as_mapping()
    assert grid_from_mapping({k: v for k, v in mapping.items() if k != "name"}, "sea") == grid  # a grid file again


def test_labelled_entries_levels_and_the_steps_override():
    from SpectrumAttackLib.audit.grid import with_overrides

    grid = grid_from_mapping({"attacks": {"pgd": {"eps": [2, 4]}, "pgd-ce": {"attack": "pgd", "eps": [4],
                                                                         "params": {"loss": "ce"}},
                                          "gn": {"std": [4]}}, "ssim_levels": [0.99, 0.95]})
    assert [(e.name, e.attack) for e in grid.attacks] == [("pgd", "pgd"), ("pgd-ce", "pgd"), ("gn", "gn")]
    assert grid.ssim_levels == (0.99, 0.95)
    changed = with_overrides(grid, steps=3, ssim_levels=[0.97])
    assert [e.params.get("steps") for e in changed.attacks] == [3, 3, None] and changed.ssim_levels == (0.97,)
    with pytest.raises(ValueError, match="ssim_levels must be"):
        grid_from_mapping({"attacks": {"gn": {"std": [4]}}, "ssim_levels": [1.2]})
    with pytest.raises(ValueError, match="grid entry 'x'"):
        grid_from_mapping({"attacks": {"x": {"attack": "nope", "eps": [4]}}})
