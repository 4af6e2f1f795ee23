"""Audit and harden runs on files: what the SpectrumAttackRobustnessCLI module runs, and the Logic in-process.

No ``slicer`` import (the CLI process imports this); torch and MONAI only inside the functions.

- Models are given as a list of *model settings* ``{"label", "model", "architecture", "numClasses",
  "modelArguments"}`` (:func:`read_models`): a catalogue name, a path, or a hardened model recorded with the
  settings of the model it was made from.
- Data are pairs ``(image, labels)`` (paths, ``(array, affine)`` pairs or ``io.Volume``; labels may be None for an
  audit) or a split file (``dataset.json``: ``{"training": [{"image", "label"}], "validation": [...]}``).
- :func:`compare_models` audits the original and the hardened model on the same cases and grid: the before/after
  figures (clean Dice, worst-case robust Dice at each 3-D SSIM level).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["compare_models", "dataset_pairs", "load_models", "read_models", "run_audit", "stop_on_request"]


def read_models(text: str) -> list[dict[str, Any]]:
    """Model settings from the CLI's ``models`` text: a ``.json`` file (a list of settings) or names/paths
    separated by ``;``.

    Raises:
        ValueError: no model, or an unreadable settings file.
    """
    text = (text or "").strip()
    if text.endswith(".json") and Path(text).is_file():
        try:
            models = json.loads(Path(text).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"models must be a readable JSON list of model settings, got {text!r} "
                             f"({error}).") from None
        if not isinstance(models, list) or not all(isinstance(m, dict) and m.get("model") for m in models):
            raise ValueError(f"models must be a JSON list of {{'model': ...}} settings, got {text!r}.")
        return models
    names = [part.strip() for part in text.split(";") if part.strip()]
    if not names:
        raise ValueError(f"models must name at least one model (names or paths separated by ';'), got {text!r}.")
    return [{"model": name} for name in names]


def load_models(models: Sequence[Mapping[str, Any]], device: str = "auto") -> dict[str, Any]:
    """label → model for the audit: names and plain paths as they are, settings with an architecture or model
    arguments loaded here (``EngineArguments.load_model``)."""
    from SpectrumAttackAdapter.arguments import EngineArguments

    out: dict[str, Any] = {}
    for settings in models:
        model = settings["model"]
        label = str(settings.get("label") or (Path(model).name if isinstance(model, (str, os.PathLike)) else model))
        if settings.get("architecture") or settings.get("numClasses") or settings.get("modelArguments"):
            model = EngineArguments(model=model, attack="saa", params={}, device=device,
                                    architecture=settings.get("architecture"),
                                    num_classes=settings.get("numClasses") or None,
                                    model_arguments=dict(settings.get("modelArguments") or {})).load_model()
        out[label] = model
    return out


def dataset_pairs(data: str | os.PathLike, key: str) -> list[tuple[str, str | None, str]]:
    """``(image, label, name)`` of one list of a split file (or of ``<folder>/dataset.json``): absolute paths
    (label None when the entry has none) and the case name (the entry's ``name``, else the image file's stem).

    Raises:
        ValueError: no split file there, or the list is missing or empty.
    """
    from SpectrumAttackLib.data.datalist import load_datalist

    path = Path(data)
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise ValueError(f"data must be a split file (.json) or a folder holding dataset.json, got {str(data)!r}.")
    try:
        cases = load_datalist(path.parent, path, key)
    except KeyError:
        raise ValueError(f"data must hold a {key!r} list, got none in {str(path)!r}.") from None
    if not cases:
        raise ValueError(f"data must hold at least one {key!r} case, got none in {str(path)!r}.")
    return [(case["image"], case.get("label"), str(case.get("name") or Path(case["image"]).name.split(".")[0]))
            for case in cases]


def stop_on_request(should_stop: Callable[[], bool] | None, progress: Any) -> Any:
    """A progress callback that forwards to ``progress`` and raises the engine's ``Cancelled`` once
    ``should_stop()`` is true (the audit is stopped between cells)."""

    def report(update: Any) -> None:
        if should_stop is not None and should_stop():
            from SpectrumAttackLib.inference.tiles import Cancelled

            raise Cancelled("audit cancelled")
        if progress is not None:
            progress(update)

    return report


def run_audit(pairs: Sequence[tuple[Any, Any, str]], models: Mapping[str, Any], grid: Any, *, output: Any = None,
              device: str = "auto", precision: str = "auto", seed: int = 0, metrics_preset: str = "clinical",
              progress: Any = None, should_stop: Callable[[], bool] | None = None, corruptions: Any = None) -> Any:
    """Audit ``models`` on the cases ``(image, labels, name)``; returns the engine's ``AuditResult``.
    ``corruptions`` replaces the grid's corruption track (None keeps it).

    Raises:
        ValueError: the engine's messages (bad grid, models, images or labels; an output with results).
        SpectrumAttackLib.inference.tiles.Cancelled: ``should_stop()`` became true.
    """
    from SpectrumAttackLib.workflows.robustness import audit, audit_models, case_grid, volume_case

    audited, loaded = audit_models(dict(models), device)
    grid_of_cases = case_grid(loaded[0])
    cases = [volume_case(image, labels, preprocessing=grid_of_cases, name=name) for image, labels, name in pairs]
    return audit(cases=cases, models=dict(zip([m.label for m in audited], loaded, strict=True)), grid=grid,
                 output=output, seed=seed, metrics_preset=metrics_preset, device=device, precision=precision,
                 progress=stop_on_request(should_stop, progress), corruptions=corruptions)


def compare_models(summary: Mapping[str, Any], original: str, hardened: str) -> dict[str, Any]:
    """The before/after figures from an audit summary of both models: ``{"levels": [...], "rows": [{"model",
    "clean_dice", "robust_dice": {level: value}}], "delta_robust": {level: hardened − original},
    "delta_clean": ...}`` (None where a value is undefined)."""
    rows = []
    for label in (original, hardened):
        own = summary["per_model"][label]
        rows.append({"model": label, "clean_dice": own.get("clean_dice"), "robust_dice": dict(own["robust_dice"])})

    def delta(a: Any, b: Any) -> float | None:
        return None if a is None or b is None else float(b) - float(a)

    levels = list(summary["levels"])
    return {"levels": levels, "rows": rows,
            "delta_clean": delta(rows[0]["clean_dice"], rows[1]["clean_dice"]),
            "delta_robust": {lv: delta(rows[0]["robust_dice"].get(lv), rows[1]["robust_dice"].get(lv))
                             for lv in levels}}
