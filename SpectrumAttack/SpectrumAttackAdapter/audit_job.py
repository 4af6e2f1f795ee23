"""The Audit section's job: audit volumes of the scene, in this process or through the robustness CLI module, and
show the results as a table node and plot charts (:mod:`.audit_nodes`).

Inputs are checked before anything runs (volumes, references, models); the results folder (``report.html``,
``audit.csv``, ``curves.png``, ``audit.json``) is written by the engine's staged writer, so a cancelled or failed
audit leaves no folder and no node.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from SpectrumAttackAdapter.audit_nodes import audit_nodes
from SpectrumAttackAdapter.clirun import RobustnessJob
from SpectrumAttackAdapter.model_list import class_dicts
from SpectrumAttackAdapter.segmentations import reference_labels
from SpectrumAttackAdapter.volumes import check_input_volume, volume_to_ijk

__all__ = ["AuditJob", "as_list", "audit_in_process", "default_output", "first_model_classes", "import_audit",
           "write_cases"]


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (a list or tuple as it is, None as [], anything else as ``[value]``)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def default_output(kind: str, name: str) -> Path:
    """A new folder for results nobody named: ``<Slicer's cache or the temp folder>/SpectrumAttack/<kind>-<name>-
    <time>`` (not created here; the staged writer creates it when the run succeeds)."""
    import slicer

    app = getattr(slicer, "app", None)
    base = Path(app.cachePath) if app is not None else Path(tempfile.gettempdir())
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
    return base / "SpectrumAttack" / f"{kind}-{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_cases(volumes: Sequence[Any], references: Sequence[Any], name: str = "inputVolume") -> None:
    """Raise ``ValueError`` unless there is at least one volume, each a grey-level 3-D volume, with one reference
    (or None) per volume and distinct names."""
    if not volumes:
        raise ValueError(f"{name} must be at least one scalar volume node, got none.")
    for volume in volumes:
        check_input_volume(volume, name)
    if references and len(references) != len(volumes):
        raise ValueError(f"referenceSegmentation must be one node (or None) per volume, got {len(references)} for "
                         f"{len(volumes)} volumes.")
    names = [v.GetName() for v in volumes]
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must be volumes with distinct names, got {names!r}.")


def _pairs(scene: Any, volumes: Sequence[Any], references: Sequence[Any], classes: list[dict[str, Any]],
           name: str = "referenceSegmentation") -> list:
    """``((array, affine), labels or None, volume name)`` per volume; messages about a reference name it
    ``name[index] segmentation`` (``name`` alone for one volume)."""
    out = []
    for index, volume in enumerate(volumes):
        reference = references[index] if references else None
        try:
            labels = None if reference is None else reference_labels(scene, reference, volume, classes)
        except ValueError as error:
            where = name if len(volumes) == 1 and name == "referenceSegmentation" else f"{name}[{index}] segmentation"
            raise ValueError(str(error).replace("referenceSegmentation", where, 1)) from None
        out.append((volume_to_ijk(volume), labels, volume.GetName()))
    return out


def audit_in_process(scene: Any, volumes: Sequence[Any], references: Sequence[Any], models: dict[str, Any],
                     grid: Any, *, output: Any, device: str, precision: str, seed: int, metrics_preset: str,
                     on_progress: Any, should_stop: Callable[[], bool], corruptions: Any = None) -> dict[str, Any]:
    """Audit in this process; returns the summary with ``"nodes"`` and ``"folder"``. ``corruptions`` replaces the
    grid's corruption track (``SpectrumAttackLib.workflows.audit``); None keeps it."""
    from SpectrumAttackAdapter.robustness_run import run_audit
    from SpectrumAttackLib.workflows.robustness import audit_models

    audited, loaded = audit_models(models, device)
    models = dict(zip([m.label for m in audited], loaded, strict=True))
    pairs = _pairs(scene, volumes, references, class_dicts(loaded[0].entry.classes))
    result = run_audit(pairs, models, grid, output=output, device=device, precision=precision, seed=seed,
                       metrics_preset=metrics_preset, progress=on_progress, should_stop=should_stop,
                       corruptions=corruptions)
    return import_audit(scene, {"cells": result.cells, "summary": result.summary}, _title(volumes), result.folder)


def _title(volumes: Sequence[Any]) -> str:
    return volumes[0].GetName() if len(volumes) == 1 else f"{volumes[0].GetName()} +{len(volumes) - 1}"


def import_audit(scene: Any, document: dict[str, Any], name: str, folder: Any) -> dict[str, Any]:
    """Add the table and charts of an audit document (``cells``, ``summary``); returns the summary with
    ``"nodes"`` (IDs of the table, charts, curve tables) and ``"folder"`` (the results folder or None)."""
    nodes = audit_nodes(scene, document["cells"], document["summary"], name)
    summary = dict(document["summary"])
    summary["nodes"] = {"table": nodes["table"].GetID(), "charts": [c.GetID() for c in nodes["charts"]],
                        "curves": [c.GetID() for c in nodes["curves"]]}
    summary["folder"] = None if folder is None else str(folder)
    return summary


def first_model_classes(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Classes of a model given by settings (catalogue: from the catalogue; files: loaded)."""
    from SpectrumAttackAdapter.model_list import catalogue_names
    from SpectrumAttackAdapter.robustness_run import load_models

    if isinstance(settings["model"], str) and settings["model"] in catalogue_names() and len(settings) <= 2:
        from SpectrumAttackLib.models.catalogue import get_entry

        return class_dicts(get_entry(settings["model"]).classes)
    loaded = next(iter(load_models([settings]).values()))
    if isinstance(loaded, str):
        from SpectrumAttackLib.models import load_model

        loaded = load_model(loaded)
    return class_dicts(loaded.entry.classes)


def write_cases(scene: Any, folder: Path, key: str, volumes: Sequence[Any], references: Sequence[Any],
                classes: list[dict[str, Any]], document: dict[str, Any] | None = None,
                name: str = "referenceSegmentation") -> dict[str, Any]:
    """Write volumes (and reference labels on their grids) as NIfTI into ``folder`` and list them under ``key`` of
    a split document (returned, also written to ``folder/dataset.json``)."""
    import numpy as np

    from SpectrumAttackLib.io.volumes import write_volume

    document = dict(document or {})
    entries = []
    for index, ((array, affine), labels, case) in enumerate(_pairs(scene, volumes, references, classes, name)):
        image = write_volume(folder / f"{key}{index:03d}_image.nii.gz", array, affine)
        entry = {"image": str(image), "name": case}
        if labels is not None:
            entry["label"] = str(write_volume(folder / f"{key}{index:03d}_label.nii.gz", labels, affine,
                                              dtype=np.int16))
        entries.append(entry)
    document[key] = entries
    (folder / "dataset.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    return document


class AuditJob(RobustnessJob):
    """An audit through the robustness CLI module (``job=audit``); ``on_finished(summary, error)`` once."""

    what = "audit's results"

    def __init__(self, scene: Any, volumes: Sequence[Any], references: Sequence[Any], models: list[dict[str, Any]],
                 grid: str, *, output: Path, device: str, precision: str, seed: int, metrics_preset: str,
                 on_progress: Any, on_finished: Any) -> None:
        self.scene, self.name, self.output, self.on_finished = scene, _title(volumes), Path(output), on_finished
        folder = Path(tempfile.mkdtemp(prefix="SpectrumAttack-audit-"))
        try:
            write_cases(scene, folder, "validation", volumes, references, first_model_classes(models[0]))
            (folder / "models.json").write_text(json.dumps(models), encoding="utf-8")
        except BaseException:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.begin({"job": "audit", "data": str(folder / "dataset.json"), "dataKey": "validation",
                    "models": str(folder / "models.json"), "grid": str(grid), "outputDirectory": str(output),
                    "device": device, "precision": precision, "seed": seed, "metricsPreset": metrics_preset},
                   folder, on_progress)

    def read_result(self) -> dict[str, Any]:
        document = json.loads((self.output / "audit.json").read_text(encoding="utf-8"))
        return import_audit(self.scene, document, self.name, self.output)
