"""The Harden section's job: fine-tune a model on labelled volumes of the scene (or a split file), adversarially
(``SpectrumAttackLib.workflows.harden.harden``: VAFT, adversarial or normal training with any attack of the
parameter table), then audit the original and the hardened model on the same cases and grid.

Everything is checked before anything runs: the pairs (volume + segmentation or labelmap of the same geometry,
segments that are classes of the model), the iteration count, the output. The pairs are written to a temporary
folder that is removed whatever happens; the hardened model appears only when the run succeeds (the engine's
staged writer), and a cancelled run leaves no model, no node and no temporary folder. The result is added to the
module's model list at once (:func:`SpectrumAttackAdapter.model_list.register_hardened`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackAdapter.audit_job import first_model_classes, write_cases
from SpectrumAttackAdapter.clirun import RobustnessJob
from SpectrumAttackAdapter.volumes import check_input_volume, ijk_to_ras_matrix, same_geometry

__all__ = ["HARDEN_MODES", "HardenJob", "HardenOutcome", "check_harden_inputs", "comparison_nodes",
           "harden_in_process"]

#: Training modes of ``workflows.harden.harden``.
HARDEN_MODES = ("vaft", "adversarial", "normal")


@dataclass
class HardenOutcome:
    """What ``logic.harden`` returns.

    Attributes:
        modelName: the hardened model's name in the module's model lists.
        modelPath: the hardened model (checkpoint file, bundle folder or nnU-Net folder), loadable by path.
        history: per-iteration records of the engine (``iteration``, ``loss``, ``val_dice`` where validated).
        comparison: before/after figures (see ``robustness_run.compare_models``).
        table: ``vtkMRMLTableNode`` of the comparison; chart: ``vtkMRMLPlotChartNode`` (robust Dice vs SSIM level).
        seconds: wall-clock time of the whole job.
    """

    modelName: str
    modelPath: str
    history: list[dict[str, Any]]
    comparison: dict[str, Any]
    table: Any
    chart: Any
    seconds: float
    nodes: list[Any] = field(default_factory=list)


def _bounds(node: Any) -> np.ndarray:
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    return np.array(bounds)


def _check_pair(pair: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{where} must be a (volume node, segmentation or labelmap node) pair, got {pair!r}.")
    volume, labels = pair
    check_input_volume(volume, f"{where} volume")
    if labels is None or not (labels.IsA("vtkMRMLSegmentationNode") or labels.IsA("vtkMRMLLabelMapVolumeNode")):
        kind = "None" if labels is None else f"{labels.GetClassName()} {labels.GetName()!r}"
        raise ValueError(f"{where} segmentation must be a segmentation or labelmap volume node, got {kind}.")
    if labels.IsA("vtkMRMLLabelMapVolumeNode"):
        if labels.GetImageData() is None or not same_geometry(labels, volume):
            raise ValueError(f"{where} segmentation must have the geometry of its volume {volume.GetName()!r} "
                             f"(dimensions and IJK→RAS matrix), got {labels.GetName()!r} with another geometry.")
    else:
        spacing = float(np.abs(ijk_to_ras_matrix(volume)[:3, :3]).max())
        seg, vol = _bounds(labels), _bounds(volume)
        if seg[0] > seg[1]:
            raise ValueError(f"{where} segmentation must hold at least one segment, got the empty "
                             f"{labels.GetName()!r}.")
        inside = (seg[0::2] >= vol[0::2] - spacing).all() and (seg[1::2] <= vol[1::2] + spacing).all()
        if not inside:
            raise ValueError(f"{where} segmentation must lie within its volume {volume.GetName()!r} (same "
                             f"geometry), got {labels.GetName()!r} reaching outside it.")
    return volume, labels


def check_harden_inputs(training: Any, validation: Any, iterations: Any, mode: str, attack: str,
                        compute: str = "local") -> tuple:
    """Check everything that can be checked without torch; returns ``(training, validation, iterations)`` with the
    pairs as lists (a folder / split file is returned as it is). ``compute``: the Compute section's backend kind;
    hardening runs on this computer only (a server runs attacks and audits).

    Raises:
        ValueError: one message naming the parameter (``trainingData``, ``validationData``, ``iterations``,
            ``mode``, ``attack``, ``compute``) and what is allowed.
    """
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.checks import check_choice, check_int

    if compute != "local":
        raise ValueError(f"compute must be 'local' (this computer) to harden a model: a SpectrumAttack server runs "
                         f"attacks and audits, not fine-tuning; got {compute!r}.")
    mode = check_choice("mode", mode, HARDEN_MODES)
    check_choice("attack", attack, attacks.available())
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise ValueError(f"iterations must be an integer ≥ 1, got {iterations!r}.")
    iterations = check_int("iterations", int(iterations), 1)

    def pairs(value: Any, name: str, required: bool) -> Any:
        if value is None and not required:
            return None
        if isinstance(value, (str, os.PathLike)):
            if not Path(value).exists():
                raise ValueError(f"{name} must be (volume, segmentation) pairs, a dataset folder or a split file, "
                                 f"got the missing path {os.fspath(value)!r}.")
            return value
        items = list(value or [])
        if not items:
            raise ValueError(f"{name} must hold at least one (volume, segmentation) pair, got none.")
        return [_check_pair(p, f"{name}[{i}]") for i, p in enumerate(items)]

    return pairs(training, "trainingData", True), pairs(validation, "validationData", False), iterations


def _split_document(scene: Any, folder: Path, training: Any, validation: Any, classes: list) -> Path:
    """A split file listing the training and validation cases (scene pairs written as NIfTI into ``folder``)."""
    from SpectrumAttackAdapter.robustness_run import dataset_pairs

    document: dict[str, Any] = {}
    for key, value in (("training", training), ("validation", validation)):
        if value is None:
            continue
        if isinstance(value, (str, os.PathLike)):
            document[key] = [{"image": image, "label": label, "name": name}
                             for image, label, name in dataset_pairs(value, key)]
        else:
            document = write_cases(scene, folder, key, [v for v, _ in value], [s for _, s in value], classes,
                                   document, f"{key}Data")
    (folder / "dataset.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    return folder / "dataset.json"


def comparison_nodes(scene: Any, comparison: dict[str, Any], name: str) -> tuple[Any, Any, list[Any]]:
    """A table (model, clean Dice, robust Dice at each SSIM level) and a chart of robust Dice vs SSIM level (one
    series per model; the clean Dice at SSIM 1.0). Returns ``(table, chart, every created node)``."""
    import vtk

    levels = comparison["levels"]
    table = vtk.vtkTable()
    columns = ["Clean Dice", *(f"Robust Dice SSIM≥{lv}" for lv in levels)]
    model_column = vtk.vtkStringArray()
    model_column.SetName("Model")
    table.AddColumn(model_column)
    for column in columns:
        array = vtk.vtkDoubleArray()
        array.SetName(column)
        table.AddColumn(array)
    table.SetNumberOfRows(len(comparison["rows"]))
    for index, row in enumerate(comparison["rows"]):
        values = [row["clean_dice"], *(row["robust_dice"].get(lv) for lv in levels)]
        table.SetValue(index, 0, row["model"])
        for column, value in enumerate(values, start=1):
            table.GetColumn(column).SetValue(index, np.nan if value is None else float(value))
    created = []
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(f"{name} before/after"))
    table_node.SetAndObserveTable(table)
    created.append(table_node)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(f"{name} robust Dice"))
    chart.SetTitle(f"{name}: Dice vs 3-D SSIM level, before and after hardening")
    chart.SetXAxisTitle("3-D SSIM level (1 = clean)")
    chart.SetYAxisTitle("worst-case Dice")
    created.append(chart)
    for row in comparison["rows"]:
        curve = vtk.vtkTable()
        for column_name in ("SSIM level", "Dice"):
            array = vtk.vtkDoubleArray()
            array.SetName(column_name)
            curve.AddColumn(array)
        points = [(1.0, row["clean_dice"]), *((float(lv), row["robust_dice"].get(lv)) for lv in levels)]
        curve.SetNumberOfRows(len(points))
        for index, (x, y) in enumerate(points):
            curve.SetValue(index, 0, x)
            curve.SetValue(index, 1, np.nan if y is None else float(y))
        curve_node = scene.AddNewNodeByClass("vtkMRMLTableNode",
                                             scene.GenerateUniqueName(f"{name} robust Dice {row['model']}"))
        curve_node.SetAndObserveTable(curve)
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", row["model"])
        series.SetAndObserveTableNodeID(curve_node.GetID())
        series.SetXColumnName("SSIM level")
        series.SetYColumnName("Dice")
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetUniqueColor()
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
        created += [curve_node, series]
    return table_node, chart, created


def _hardened_settings(model_path: str, mode: str, label: str) -> dict[str, Any]:
    """A hardened model's record: the engine writes a folder loadable by its path alone (architecture, classes and
    preprocessing recorded in it)."""
    return {"model": model_path, "source": label, "mode": mode}


def _engine_model(settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(model, model_arguments)`` for ``workflows.harden.harden`` from model settings."""
    arguments = dict(settings.get("modelArguments") or {})
    if settings.get("architecture"):
        arguments["architecture"] = settings["architecture"]
    if settings.get("numClasses"):
        arguments["num_classes"] = int(settings["numClasses"])
    return settings["model"], arguments


def run_harden_files(split: Path, settings: dict[str, Any], *, mode: str, attack: str, params: dict[str, Any],
                     iterations: int, output: Path, grid: Any, device: str, precision: str, seed: int,
                     progress: Any, should_stop: Callable[[], bool] | None) -> tuple[Any, dict[str, Any]]:
    """Harden the model of ``settings`` on the split file's training cases, then audit the original and the
    hardened model on its validation cases (the training cases when it has none). Used in-process and by the
    robustness CLI (nnU-Net models are audited on nnU-Net's own grid). Returns ``(engine HardenResult,
    comparison)``."""
    from SpectrumAttackAdapter.robustness_run import compare_models, dataset_pairs, load_models, run_audit
    from SpectrumAttackLib.workflows.harden import harden

    split = split / "dataset.json" if split.is_dir() else split
    document = json.loads(split.read_text(encoding="utf-8"))
    training = [(image, label) for image, label, _ in dataset_pairs(split, "training")]
    validation = ([(image, label) for image, label, _ in dataset_pairs(split, "validation")]
                  if document.get("validation") else None)
    model, model_arguments = _engine_model(settings)
    result = harden(training, model, mode=mode, attack=attack, params=params, iterations=iterations,
                    validation=validation, output=output, device=device, precision=precision, seed=seed,
                    progress=progress, should_stop=should_stop, model_arguments=model_arguments)
    cases = dataset_pairs(split, "validation" if validation else "training")
    models = load_models([{**settings, "label": "original"}, {"model": str(result.model_path), "label": "hardened"}],
                         device)
    audit = run_audit(cases, models, grid, device=device, precision=precision, seed=seed, should_stop=should_stop)
    return result, compare_models(audit.summary, "original", "hardened")


def harden_in_process(scene: Any, registry: Any, training: Any, validation: Any, settings: dict[str, Any],
                      label: str, *, mode: str, attack: str, params: dict[str, Any], iterations: int, output: Path,
                      grid: Any, device: str, precision: str, seed: int, on_progress: Any,
                      should_stop: Callable[[], bool]) -> HardenOutcome:
    """Harden in this process (see the module docstring); the temporary folder is removed whatever happens."""

    start = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="SpectrumAttack-harden-"))
    try:
        split = _split_document(scene, folder, training, validation, first_model_classes(settings))
        result, comparison = run_harden_files(split, settings, mode=mode, attack=attack, params=params,
                                              iterations=iterations, output=output, grid=grid, device=device,
                                              precision=precision, seed=seed, progress=on_progress,
                                              should_stop=should_stop)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _finish(scene, registry, settings, label, mode, str(result.model_path), list(result.history), comparison,
                   time.monotonic() - start)


def _finish(scene: Any, registry: Any, settings: dict[str, Any], label: str, mode: str, model_path: str,
            history: list, comparison: dict[str, Any], seconds: float) -> HardenOutcome:
    from SpectrumAttackAdapter.model_list import register_hardened

    name = register_hardened(registry, f"{label} hardened ({mode})",
                             _hardened_settings(model_path, mode, label))
    table, chart, nodes = comparison_nodes(scene, comparison, name)
    return HardenOutcome(name, model_path, history, comparison, table, chart, seconds, nodes)


class HardenJob(RobustnessJob):
    """Hardening through the robustness CLI module (``job=harden``); ``on_finished(outcome, error)`` once."""

    what = "hardening results"

    def __init__(self, scene: Any, registry: Any, training: Any, validation: Any, settings: dict[str, Any],
                 label: str, *, mode: str, attack: str, params: dict[str, Any], iterations: int, output: Path,
                 grid: Any, device: str, precision: str, seed: int, on_progress: Any, on_finished: Any) -> None:
        self.scene, self.registry, self.settings, self.label, self.mode = scene, registry, settings, label, mode
        self.output, self.on_finished, self.started = Path(output), on_finished, time.monotonic()
        self.folder = Path(tempfile.mkdtemp(prefix="SpectrumAttack-harden-"))
        try:
            split = _split_document(scene, self.folder, training, validation, first_model_classes(settings))
            (self.folder / "models.json").write_text(json.dumps([settings]), encoding="utf-8")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.begin({"job": "harden", "data": str(split), "models": str(self.folder / "models.json"), "mode": mode,
                    "attack": attack, "attackParameters": json.dumps(params), "iterations": iterations,
                    "grid": str(grid), "outputDirectory": str(output),
                    "comparisonFile": str(self.folder / "comparison.json"), "device": device,
                    "precision": precision, "seed": seed}, self.folder, on_progress)

    def read_result(self) -> HardenOutcome:
        document = json.loads((self.folder / "comparison.json").read_text(encoding="utf-8"))
        return _finish(self.scene, self.registry, self.settings, self.label, self.mode, document["model_path"],
                       document["history"], document["comparison"], time.monotonic() - self.started)
