"""The model catalogue ``Resources/models.json``: which models exist, how to build them and how to feed them.

Torch-free, so Slicer can list models and their classes before its dependency check. Schema (version 1)::

    {"version": 1, "models": [{
        "name": "unet-btcv-3mm", "architecture": "unet", "arguments": {...build_model keywords...},
        "num_classes": 14, "classes": [{"id": 0, "name": "background", "rgb": [0, 0, 0]}, ...],
        "preprocessing": {"orientation": "RAS", "spacing_mm": [3, 3, 3], "a_min": -175, "a_max": 250,
                          "b_min": 0, "b_max": 1, "roi": [64, 64, 64]},
        "weights": "weights/unet-btcv-3mm.pt", "sha256": "", "provenance": "...",
        "clean_dice": {"liver": 0.9, ...}, "description": "..."}]}

``weights`` is relative to the resources folder (:func:`SpectrumAttackLib.resources.resource_dir`); an empty
``sha256`` means "not verified" (weights not trained yet).

Example:
    >>> entry = get_entry("unet-btcv-3mm")
    >>> entry.num_classes, entry.class_names[6], entry.preprocessing.spacing_mm
    (14, 'liver', (3.0, 3.0, 3.0))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from SpectrumAttackLib.resources import resource_dir

__all__ = [
    "ARCHITECTURES",
    "CATALOGUE_FILE",
    "ClassInfo",
    "ModelEntry",
    "Preprocessing",
    "get_entry",
    "load_catalogue",
]

CATALOGUE_FILE = "models.json"
#: The seed's ``--model_name`` values.
ARCHITECTURES = ("unet", "unet-r", "swin-unetr", "segresnet")
_VERSION = 1


@dataclass(frozen=True)
class ClassInfo:
    """One output class: label id (= logit channel), display name, RGB colour (0–255)."""

    id: int
    name: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Preprocessing:
    """How a volume must be prepared for the model (the seed's eval transforms, seed-algorithms §9.1).

    Attributes:
        orientation: axis codes after reorientation (``"RAS"``).
        spacing_mm: target voxel size along I, J, K in millimetres.
        a_min, a_max: intensity window of the input (HU for CT), clipped.
        b_min, b_max: the range the window is mapped onto (0, 1).
        roi: sliding-window / tile size in voxels, ``(H, W, D)``.
    """

    orientation: str = "RAS"
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 2.0)
    a_min: float = -175.0
    a_max: float = 250.0
    b_min: float = 0.0
    b_max: float = 1.0
    roi: tuple[int, int, int] = (96, 96, 96)


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue model (or a model described on the fly for a user's file).

    Attributes:
        name: catalogue key (a file name for user models).
        architecture: ``"unet"``, ``"unet-r"``, ``"swin-unetr"``, ``"torchscript"`` or ``"bundle"``.
        arguments: keyword arguments for :func:`SpectrumAttackLib.models.build_model`.
        num_classes: output channels, background included.
        classes: one :class:`ClassInfo` per output channel, ordered by id.
        preprocessing: see :class:`Preprocessing`.
        weights: weights file, relative to the resources folder or absolute.
        sha256: expected sha256 of the weights file; ``""`` when not recorded.
        provenance: where the weights come from (training data, command, date).
        clean_dice: Dice per organ on clean data, as published with the weights.
        description: one sentence for the GUI.
    """

    name: str
    architecture: str
    num_classes: int
    classes: tuple[ClassInfo, ...]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    arguments: dict[str, Any] = field(default_factory=dict)
    weights: str = ""
    sha256: str = ""
    provenance: str = ""
    clean_dice: dict[str, float] = field(default_factory=dict)
    description: str = ""

    @property
    def weights_path(self) -> Path:
        """Absolute path of the weights file (it may not exist yet)."""
        path = Path(self.weights)
        return path if path.is_absolute() else resource_dir() / path

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by id."""
        return tuple(c.name for c in self.classes)


def _parse_entry(raw: dict[str, Any], source: str) -> ModelEntry:
    where = f"model {raw.get('name', '?')!r} in {source}"
    try:
        classes = tuple(
            ClassInfo(int(c["id"]), str(c["name"]), tuple(int(v) for v in c["rgb"])) for c in raw["classes"]
        )
        pre = raw.get("preprocessing", {})
        entry = ModelEntry(
            name=str(raw["name"]),
            architecture=str(raw["architecture"]),
            num_classes=int(raw["num_classes"]),
            classes=classes,
            preprocessing=Preprocessing(
                orientation=str(pre.get("orientation", "RAS")),
                spacing_mm=tuple(float(v) for v in pre["spacing_mm"]),
                a_min=float(pre["a_min"]),
                a_max=float(pre["a_max"]),
                b_min=float(pre["b_min"]),
                b_max=float(pre["b_max"]),
                roi=tuple(int(v) for v in pre["roi"]),
            ),
            arguments=dict(raw.get("arguments", {})),
            weights=str(raw.get("weights", "")),
            sha256=str(raw.get("sha256", "")).lower(),
            provenance=str(raw.get("provenance", "")),
            clean_dice={str(k): float(v) for k, v in raw.get("clean_dice", {}).items()},
            description=str(raw.get("description", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} must have the fields of catalogue schema {_VERSION}, got error {exc!r}.") from None
    if entry.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture of {where} must be one of {ARCHITECTURES}, got {entry.architecture!r}.")
    if [c.id for c in entry.classes] != list(range(entry.num_classes)):
        raise ValueError(f"classes of {where} must have ids 0..{entry.num_classes - 1} in order, got "
                         f"{[c.id for c in entry.classes]!r}.")  # fmt: skip
    if any(len(c.rgb) != 3 or not all(0 <= v <= 255 for v in c.rgb) for c in entry.classes):
        raise ValueError(f"classes of {where} must have rgb [r, g, b] in 0..255.")
    if len(entry.preprocessing.spacing_mm) != 3 or len(entry.preprocessing.roi) != 3:
        raise ValueError(f"preprocessing of {where} must give 3 spacing_mm and 3 roi values.")
    return entry


def load_catalogue(path: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Read the catalogue.

    Args:
        path: a ``models.json``; default ``resource_dir() / "models.json"``.

    Raises:
        FileNotFoundError: no catalogue file.
        ValueError: not JSON, wrong schema version, missing fields, duplicate names.
    """
    path = Path(path) if path is not None else resource_dir() / CATALOGUE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"catalogue must be valid JSON, got {str(path)!r} ({exc}).") from None
    if not isinstance(raw, dict) or raw.get("version") != _VERSION:
        version = raw.get("version") if isinstance(raw, dict) else None
        raise ValueError(f"catalogue version must be {_VERSION}, got {version!r} in {str(path)!r}.")
    entries = [_parse_entry(item, str(path)) for item in raw.get("models", [])]
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"catalogue model names must be unique, got duplicates {duplicates!r} in {str(path)!r}.")
    return entries


def get_entry(name: str, path: str | os.PathLike | None = None) -> ModelEntry:
    """The catalogue entry called ``name``.

    Raises:
        ValueError: unknown name (the message lists the catalogue's names).
    """
    entries = load_catalogue(path)
    for entry in entries:
        if entry.name == name:
            return entry
    listed = ", ".join(repr(e.name) for e in entries)
    raise ValueError(f"model must be one of {listed} (or a path to a model file), got {name!r}.")
