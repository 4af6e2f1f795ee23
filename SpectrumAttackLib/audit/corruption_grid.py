"""The corruption section of an audit grid: which scanner artefacts run at which severities.

In a grid file (beside ``attacks``; a grid may hold either or both)::

    corruptions: all                      # every corruption at severities 1-5
    corruptions: [motion, gaussian-noise] # these, at severities 1-5
    corruptions:                          # per corruption, its severities
      motion: {severity: [1, 3, 5]}
      blur: {}
    modality: auto                        # ct | mr | auto (CT when the model's window is in HU, a_min < 0)

Each (corruption, severity) is one audit cell, scored like an attack cell (see
:mod:`SpectrumAttackLib.corruptions` for the severity scales).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from SpectrumAttackLib import corruptions
from SpectrumAttackLib.checks import check_choice, check_int

__all__ = ["MODALITY_CHOICES", "GridCorruption", "corruption_entries", "resolve_modality"]

#: the grid's ``modality`` values: ``auto`` picks CT for a window in HU (a_min < 0), else MR.
MODALITY_CHOICES = ("auto", "ct", "mr")


@dataclass(frozen=True)
class GridCorruption:
    """One corruption of the grid, with the interface of :class:`~SpectrumAttackLib.audit.grid.GridAttack` that the
    cell engine uses (``attack`` is the corruption's name, the budget is the severity).

    Attributes:
        corruption: registry name (``"motion"``).
        budgets: its severities, ascending (1–5).
        modality: ``"auto"``, ``"ct"`` or ``"mr"`` (resolved per audit by :func:`resolve_modality`).
    """

    corruption: str
    budgets: tuple[int, ...]
    modality: str = "auto"

    kind = "corruption"
    budget_name = "severity"
    categorical = False
    ensemble = None  # a corruption belongs to no attack ensemble

    @property
    def attack(self) -> str:
        """The name its cells carry in the records' ``attack`` field."""
        return self.corruption

    @property
    def name(self) -> str:
        """The entry's name in the results (as :attr:`GridAttack.name`): the corruption's."""
        return self.corruption

    @property
    def params(self) -> dict[str, Any]:
        return {"modality": self.modality}

    def cell_params(self, budget: Any) -> dict[str, Any]:
        """The corruption's parameters at severity ``budget``."""
        return {"severity": budget, "modality": self.modality}


def resolve_modality(modality: str, preprocessing: Mapping[str, Any]) -> tuple[str, float | None]:
    """``(modality, hu_per_unit)`` of an audit: ``auto`` is CT when the window is in HU (``a_min < 0``, the
    case pipeline's rule), and HU per image unit is ``(a_max − a_min) / (b_max − b_min)`` on CT."""
    if modality == "auto":
        modality = "ct" if float(preprocessing.get("a_min", 0.0)) < 0 else "mr"
    if modality != "ct":
        return modality, None
    width = float(preprocessing["b_max"]) - float(preprocessing["b_min"])
    return modality, (float(preprocessing["a_max"]) - float(preprocessing["a_min"])) / width


def corruption_entries(spec: Any, modality: Any = "auto") -> tuple[GridCorruption, ...]:
    """The grid's corruption entries from its ``corruptions`` section (see the module docstring).

    Raises:
        ValueError: an unknown corruption or modality, a bad or repeated severity, or a section of another shape;
            the message names the entry (``grid corruption 'motion': ...``).
    """
    modality = check_choice("grid modality", modality, MODALITY_CHOICES)
    names = corruptions.available()
    if spec == "all":
        spec = dict.fromkeys(names)
    elif isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        spec = dict.fromkeys(spec)
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"grid corruptions must be 'all', a list of corruption names or a mapping name -> "
                         f"{{severity: [1-5]}}, got {spec!r}.")
    entries = []
    for name, entry in spec.items():
        where = f"grid corruption {name!r}"
        if name not in names:
            raise ValueError(f"{where}: corruption must be one of {', '.join(map(repr, names))}, got {name!r}.")
        entry = entry or {}
        if not isinstance(entry, Mapping) or set(entry) - {"severity"}:
            raise ValueError(f"{where}: must be a mapping {{severity: [1-5]}}, got {entry!r}.")
        severities = entry.get("severity", list(corruptions.SEVERITIES))
        if isinstance(severities, int) and not isinstance(severities, bool):
            severities = [severities]
        if not isinstance(severities, Sequence) or isinstance(severities, str) or not severities:
            raise ValueError(f"{where}: severity must be a non-empty list of integers 1-5, got {severities!r}.")
        try:
            checked = [check_int(f"severity[{i}]", s, 1, len(corruptions.SEVERITIES))
                       for i, s in enumerate(severities)]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if len(set(checked)) != len(checked):
            raise ValueError(f"{where}: severity must list each level once, got {list(severities)!r}.")
        entries.append(GridCorruption(name, tuple(sorted(checked)), modality))
    return tuple(entries)
