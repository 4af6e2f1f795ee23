"""The audit grid: which attacks run at which budgets, from a preset or a small YAML/JSON file.

Each attack family is swept over its own budget parameter (:data:`BUDGET_PARAMETERS`, derived from the parameter
table :mod:`SpectrumAttackLib.attacks.parameters`): SA² over ρ, VAFA over
``q_max``, the voxel attacks over ε on the 0–255 scale, Gaussian noise over σ (0–255 scale) and DFB over the
frequency band it drops. The other parameters of an attack are fixed for the whole sweep.

Presets (:data:`PRESETS`):

``quick``
    small enough for the bundled sample CT and model in a few minutes on 2 CPU cores: 5 steps, two budgets per
    attack.
``standard``
    the sweep a user runs for a real answer: 20 steps (10 for SA², as the seed README), five budgets per attack.
``paper``
    the attacks and settings behind the SA² paper's results table that are published (seed-algorithms §2.8, §6,
    §12): PGD, SegPGD and CosPGD at ε ∈ {4, 8} with 20 steps, VAFA at q_max ∈ {20, 30} with 32³ blocks and 20
    steps (VAFA paper Table 5), SA² with the seed README's settings at ρ ∈ {0.2, 0.4} (the table's ρ is not
    published), Gaussian noise at σ ∈ {4, 8} and DFB per band. AutoAttack and FAA are in no reference repository.

``sea``
    SEA for volumes (Croce, Singh, Hein, ECCV 2024): APGD with each of SEA's three losses (masked CE, class-balanced
    masked CE, Jensen–Shannon) at ε 4 and 8, 300 steps with the progressive radius (SEA's defaults; ``--steps``
    overrides them, e.g. for CPUs), one ensemble ``sea`` whose worst case per volume the summary takes.

A grid file holds one entry per attack: the attack name, a list of budgets under its budget parameter, and
optional fixed parameters; an entry named otherwise gives its attack under ``attack`` (so one attack can appear
with several settings), and entries sharing an ``ensemble`` name are one worst case per volume (SEA's). An optional
``ssim_levels`` list runs every family with a strength knob at each 3-D SSIM level (``attacks.at_ssim``)::

    attacks:
      saa: {rho: [0.05, 0.2, 0.4], params: {steps: 10, block_size: [16, 16, 16]}}
      pgd: {eps: [2, 4, 8], params: {steps: 10}}
      apgd-js: {attack: apgd, eps: [4, 8], params: {loss: js}, ensemble: sea}
      gn: {std: [4, 8]}
      dfb: {freq_band: [low, high]}
    ssim_levels: [0.99, 0.97, 0.95]

Every entry is checked by building the attack, so a bad grid fails before any work with one error naming the
entry (``grid entry 'pgd' eps[1]: eps must be ...``).

A grid may also hold a ``corruptions`` section (scanner artefacts at severities 1–5, one cell per corruption ×
severity, :mod:`SpectrumAttackLib.audit.corruption_grid`) and its ``modality``; the ``standard`` preset runs every
corruption at every severity, and :func:`with_corruptions` adds them to any grid (``--corruptions``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import parameters_of
from SpectrumAttackLib.audit.corruption_grid import GridCorruption, corruption_entries
from SpectrumAttackLib.checks import check_choice

__all__ = ["BUDGET_PARAMETERS", "PRESETS", "SEA_STEPS", "AuditGrid", "GridAttack", "grid_from_file",
           "grid_from_mapping", "resolve_grid", "with_corruptions", "with_overrides"]

#: the parameters an audit can sweep, in order of preference when an attack takes several (SA² takes ρ and the band).
BUDGET_ORDER = ("rho", "q_max", "eps", "std", "freq_band")


def _budget_parameters() -> dict[str, str]:
    """attack → the parameter an audit sweeps (its budget), from the one parameter table. Units: ρ a fraction,
    q_max a quantisation step, ε and σ on the 0–255 scale, freq_band a band name."""
    budgets = {}
    for attack in attacks.available():
        taken = {p.engine for p in parameters_of(attack)}
        chosen = next((name for name in BUDGET_ORDER if name in taken), None)
        if chosen is not None:
            budgets[attack] = chosen
    return budgets


#: attack → the parameter an audit sweeps (see :func:`_budget_parameters`).
BUDGET_PARAMETERS: dict[str, str] = _budget_parameters()

#: budgets that are names, not numbers: no curve over them, one point each on the Dice-vs-SSIM axes.
CATEGORICAL_BUDGETS = ("freq_band",)

_SAA_README = {"block_size": [16, 16, 16], "lambda_dice": 0.2, "use_ssim_loss": True, "lambda_ssim": 0.75}

#: SEA's iteration count (``tools/infer.py --n_iter``: "do not change, the standard SEA implementation").
SEA_STEPS = 300
_SEA_LOSSES = ("masked-ce", "balanced-masked-ce", "js")

#: preset name → grid mapping (the grid-file layout).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"attacks": {
        "saa": {"rho": [0.1, 0.4], "params": {**_SAA_README, "steps": 5}},
        "vafa-3d": {"q_max": [10, 40], "params": {"steps": 5, "block_size": [16, 16, 16]}},
        "pgd": {"eps": [2, 8], "params": {"steps": 5}},
        "gn": {"std": [4, 16]},
        "dfb": {"freq_band": ["low", "high"], "params": {"block_size": [16, 16, 16]}},
    }},
    "standard": {"attacks": {
        "saa": {"rho": [0.05, 0.1, 0.2, 0.4, 0.6], "params": {**_SAA_README, "steps": 10}},
        "vafa-3d": {"q_max": [10, 20, 30, 40, 60], "params": {"steps": 20, "block_size": [32, 32, 32]}},
        "pgd": {"eps": [1, 2, 4, 8, 16], "params": {"steps": 20}},
        "gn": {"std": [1, 2, 4, 8, 16]},
        "dfb": {"freq_band": ["low", "middle", "high"], "params": {"block_size": [16, 16, 16]}},
    }, "corruptions": "all"},
    "paper": {"attacks": {
        "saa": {"rho": [0.2, 0.4], "params": {**_SAA_README, "steps": 10}},
        "vafa-3d": {"q_max": [20, 30], "params": {"steps": 20, "block_size": [32, 32, 32]}},
        "pgd": {"eps": [4, 8], "params": {"steps": 20}},
        "segpgd": {"eps": [4, 8], "params": {"steps": 20}},
        "cospgd": {"eps": [4, 8], "params": {"steps": 20}},
        "gn": {"std": [4, 8]},
        "dfb": {"freq_band": ["low", "middle", "high"], "params": {"block_size": [8, 8, 8]}},
    }},
    "sea": {"attacks": {
        f"apgd-{loss}": {"attack": "apgd", "eps": [4, 8], "ensemble": "sea",
                         "params": {"loss": loss, "steps": SEA_STEPS, "progressive_radius": True}}
        for loss in _SEA_LOSSES
    }},
}


@dataclass(frozen=True)
class GridAttack:
    """One attack family of the grid.

    Attributes:
        attack: registry name (``"saa"``, ``"pgd"``, ...).
        budget_name: the swept parameter (:data:`BUDGET_PARAMETERS`).
        budgets: its values, in the order given (numbers, or band names for DFB).
        params: the fixed parameters of every run (without the budget and without ``seed``).
        label: the entry's name in the results (default the attack's).
        ensemble: entries sharing it are one worst case per volume (``"sea"``); None for none.
    """

    attack: str
    budget_name: str
    budgets: tuple[Any, ...]
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    ensemble: str | None = None

    @property
    def name(self) -> str:
        """The entry's name in the results: its label, else the attack's."""
        return self.label or self.attack

    @property
    def categorical(self) -> bool:
        """Whether the budgets are names (no Dice-vs-budget curve)."""
        return self.budget_name in CATEGORICAL_BUDGETS

    def cell_params(self, budget: Any) -> dict[str, Any]:
        """The attack's keyword parameters at ``budget`` (lists made tuples)."""
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in self.params.items()}
        params[self.budget_name] = budget
        return params


@dataclass(frozen=True)
class AuditGrid:
    """The attacks × budgets (and corruptions × severities) of an audit; ``name`` is the preset or the grid file."""

    attacks: tuple[GridAttack, ...]
    name: str = "custom"
    corruptions: tuple[GridCorruption, ...] = ()
    #: 3-D SSIM levels every family with a strength knob is driven to (empty: none).
    ssim_levels: tuple[float, ...] = ()

    def cells(self) -> list[tuple[GridAttack | GridCorruption, Any]]:
        """Every (attack, budget) pair in grid order, then every (corruption, severity) pair."""
        return [(entry, budget) for entry in (*self.attacks, *self.corruptions) for budget in entry.budgets]

    def as_mapping(self) -> dict[str, Any]:
        """The grid-file layout of this grid (JSON-ready), for the manifest."""
        entries = {}
        for e in self.attacks:
            entry = {e.budget_name: list(e.budgets), "params": dict(e.params)}
            entries[e.name] = {**entry, **({"attack": e.attack} if e.label else {}),
                               **({"ensemble": e.ensemble} if e.ensemble else {})}
        mapping: dict[str, Any] = {"name": self.name, "attacks": entries,
                                   **({"ssim_levels": list(self.ssim_levels)} if self.ssim_levels else {})}
        if self.corruptions:
            mapping["corruptions"] = {e.corruption: {"severity": list(e.budgets)} for e in self.corruptions}
            mapping["modality"] = self.corruptions[0].modality
        return mapping


def _entry_error(attack: str, message: str) -> ValueError:
    return ValueError(f"grid entry {attack!r}: {message}")


def _check_budget(attack: str, budget_name: str, index: int, value: Any, params: Mapping[str, Any]) -> Any:
    """Build the attack once at this budget (on a stand-in model) so its own checks name what is wrong."""
    import torch

    where = f"{budget_name}[{index}]"
    if budget_name in CATEGORICAL_BUDGETS:
        if not isinstance(value, str):
            raise _entry_error(attack, f"{where} must be a band name, got {value!r}.")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _entry_error(attack, f"{where} must be a number, got {value!r}.")
    elif not value > 0:
        raise _entry_error(attack, f"{where} must be > 0, got {value!r}.")
    try:
        attacks.create(attack, torch.nn.Identity(), **{**params, budget_name: value})
    except (ValueError, TypeError) as exc:
        raise _entry_error(attack, f"{where} = {value!r}: {str(exc).strip()}") from None
    return value


def grid_from_mapping(data: Any, name: str = "custom") -> AuditGrid:
    """Check a grid given as a mapping (the grid-file layout, see the module docstring) and return it.

    Raises:
        ValueError: not a mapping with a non-empty ``attacks`` mapping; an unknown attack or key; a budget list
            missing, empty, repeated or with a bad value; a fixed parameter the attack rejects. The message names
            the entry.
    """
    only_corruptions = isinstance(data, Mapping) and "corruptions" in data and not data.get("attacks")
    attacks_missing = not isinstance(data, Mapping) or not isinstance(data.get("attacks"), Mapping) \
        or not data["attacks"]
    if not isinstance(data, Mapping) or set(data) - {"attacks", "ssim_levels", "corruptions", "modality"} \
            or (attacks_missing and not only_corruptions):
        raise ValueError(f"grid must be a mapping with the key 'attacks' holding a non-empty mapping of attack "
                         f"name -> {{budget: [values], params: {{...}}}} (and optionally 'ssim_levels', "
                         f"'corruptions' and 'modality'), got {_short(data)}.")
    levels = _ssim_levels(data.get("ssim_levels"))
    entries = []
    for label, spec in (data.get("attacks") or {}).items():
        attack = spec.get("attack", label) if isinstance(spec, Mapping) else label
        ensemble = spec.get("ensemble") if isinstance(spec, Mapping) else None
        if ensemble is not None and not isinstance(ensemble, str):
            raise _entry_error(label, f"ensemble must be a name, got {ensemble!r}.")
        if attack not in BUDGET_PARAMETERS:
            known = ", ".join(repr(a) for a in BUDGET_PARAMETERS)
            raise _entry_error(label, f"attack must be one of {known}, got {attack!r}.")
        budget_name = BUDGET_PARAMETERS[attack]
        if not isinstance(spec, Mapping):
            raise _entry_error(label, f"must be a mapping {{{budget_name}: [values], params: {{...}}}}, "
                                       f"got {_short(spec)}.")
        unknown = sorted(set(spec) - {budget_name, "params", "attack", "ensemble"})
        if unknown:
            raise _entry_error(label, f"keys must be {budget_name!r} (its budget), 'params', 'attack' and "
                                       f"'ensemble', got {', '.join(repr(k) for k in unknown)}.")
        budgets = spec.get(budget_name)
        if isinstance(budgets, (int, float, str)) and not isinstance(budgets, bool):
            budgets = [budgets]
        if not isinstance(budgets, Sequence) or isinstance(budgets, str) or not budgets:
            raise _entry_error(label, f"{budget_name} must be a non-empty list of budgets, got {_short(budgets)}.")
        params = spec.get("params") or {}
        if not isinstance(params, Mapping):
            raise _entry_error(label, f"params must be a mapping of parameter -> value, got {_short(params)}.")
        params = {str(k): v for k, v in params.items()}
        for fixed in (budget_name, "seed"):
            if fixed in params:
                raise _entry_error(label, f"params must not set {fixed!r} (the budget is swept; the seed is the "
                                           f"audit's), got {fixed}={params[fixed]!r}.")
        checked = [_check_budget(attack, budget_name, i, v, params) for i, v in enumerate(budgets)]
        if len(set(map(repr, checked))) != len(checked):
            raise _entry_error(attack, f"{budget_name} must list each budget once, got {list(budgets)!r}.")
        entries.append(GridAttack(attack, budget_name, tuple(checked), params,
                                  label=label if label != attack else "", ensemble=ensemble))
    track = corruption_entries(data["corruptions"], data.get("modality", "auto")) if "corruptions" in data else ()
    return AuditGrid(tuple(entries), name, corruptions=track, ssim_levels=levels)



def with_corruptions(grid: AuditGrid, spec: Any, modality: Any = "auto") -> AuditGrid:
    """``grid`` with its corruption section replaced by ``spec`` (``"all"``, names, or the grid-file mapping; see
    :mod:`SpectrumAttackLib.audit.corruption_grid`) at ``modality`` (``auto``, ``ct`` or ``mr``); ``"none"`` or an
    empty list removes it.

    Raises:
        ValueError: a bad section (one message naming the corruption).
    """
    from dataclasses import replace

    if spec == "none" or (isinstance(spec, (list, tuple, Mapping)) and not spec):
        return replace(grid, corruptions=())
    return replace(grid, corruptions=corruption_entries(spec, modality))


def _ssim_levels(levels: Any) -> tuple[float, ...]:
    if levels is None:
        return ()
    if isinstance(levels, (int, float)) and not isinstance(levels, bool):
        levels = [levels]
    if not isinstance(levels, Sequence) or isinstance(levels, str) or not levels or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1 for v in levels):
        raise ValueError(f"ssim_levels must be a non-empty list of 3-D SSIMs in (0, 1), got {_short(levels)}.")
    if len(set(levels)) != len(levels):
        raise ValueError(f"ssim_levels must list each level once, got {list(levels)!r}.")
    return tuple(float(v) for v in levels)


def with_overrides(grid: AuditGrid, steps: int | None = None,
                   ssim_levels: Sequence[float] | None = None) -> AuditGrid:
    """``grid`` with ``steps`` for every entry whose attack takes steps (the ``--steps`` override) and/or other
    ``ssim_levels`` (``--ssim_levels``); each is checked as a grid file's would be."""
    import dataclasses

    mapping = grid.as_mapping()
    name = mapping.pop("name")
    if steps is not None:
        for label, spec in mapping["attacks"].items():
            entry = next(e for e in grid.attacks if e.name == label)
            if "steps" in attacks.attack_parameters(entry.attack):
                spec["params"] = {**spec["params"], "steps": steps}
    if ssim_levels is not None:
        mapping["ssim_levels"] = list(ssim_levels)
    return dataclasses.replace(grid_from_mapping(mapping, name), name=name)


def grid_from_file(path: str | os.PathLike) -> AuditGrid:
    """Read and check a grid file (``.json``, or ``.yaml``/``.yml``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or of another type; the contents fail :func:`grid_from_mapping`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--grid must be an existing YAML or JSON file, got {str(path)!r}.")
    suffix = path.suffix.lower()
    check_choice("--grid file ending", suffix, (".json", ".yaml", ".yml"))
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--grid must be valid {suffix[1:].upper()}, got {str(path)!r} ({first}).") from None
    return grid_from_mapping(data, name=path.name)


def resolve_grid(grid: str | os.PathLike | Mapping[str, Any] | AuditGrid) -> AuditGrid:
    """A preset name, a grid file, a grid mapping or an :class:`AuditGrid`, as a checked :class:`AuditGrid`.

    Raises:
        ValueError: an unknown preset, or a bad grid (see :func:`grid_from_mapping`).
    """
    if isinstance(grid, AuditGrid):
        return grid
    if isinstance(grid, Mapping):
        return grid_from_mapping(grid)
    if isinstance(grid, str) and grid in PRESETS:
        return grid_from_mapping(PRESETS[grid], name=grid)
    if isinstance(grid, (str, os.PathLike)) and Path(grid).suffix.lower() in (".json", ".yaml", ".yml"):
        return grid_from_file(grid)
    raise ValueError(f"preset must be one of {', '.join(repr(p) for p in PRESETS)} (or a grid file), got {grid!r}.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
