"""Robustness audit: every attack family over a budget sweep, on one or several models, compared at equal
perceptibility. What ``spectrum-attack audit`` and the Slicer module's ``logic.audit`` run.

Steps: plan the cells (cases × models × attacks × budgets, :mod:`SpectrumAttackLib.audit.grid`) → skip those
already finished (``resume``) → run the others (:func:`~SpectrumAttackLib.audit.runner.run_cells`: the clean
prediction once per case and model, each cell attacked, predicted and scored in the model grid, its record written
as it finishes; shared out over the ranks under ``torchrun``) → summarise (:mod:`SpectrumAttackLib.audit.summary`)
→ rank 0 writes ``audit.csv``, ``audit.json``, ``curves.png``, ``report.html`` and ``manifest.json`` into a staging
folder beside ``output`` and moves them into place.

The staging folder ``.<output name>.audit-partial`` keeps the finished records of an interrupted audit; running
again with ``resume=True`` continues from them (and from a finished ``output``), redoing no finished cell.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib.audit.grid import AuditGrid, resolve_grid, with_corruptions, with_overrides
from SpectrumAttackLib.audit.outputs import AUDIT_RESULTS, write_audit_files
from SpectrumAttackLib.audit.runner import AuditModel, AuditSettings, CaseSource, plan_cells, run_cells
from SpectrumAttackLib.audit.store import CellStore
from SpectrumAttackLib.audit.summary import SSIM_LEVELS, summarise
from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.pipeline.results import AuditResult
from SpectrumAttackLib.precision import check_precision
from SpectrumAttackLib.runtime import ProgressCallback

if TYPE_CHECKING:
    from SpectrumAttackLib.distributed import DistContext

__all__ = ["AuditResult", "audit", "audit_models", "case_grid", "volume_case"]


def volume_case(image: Any, labels: Any = None, *, preprocessing: Any, name: str = "image",
                source: str | None = None) -> CaseSource:
    """A case from one volume in its own grid, resampled to the model grid when loaded.

    Args:
        image: a :class:`~SpectrumAttackLib.io.volumes.Volume`, an ``(array_ijk, affine)`` pair or a NIfTI/NRRD
            path; input units (HU for CT). Never modified.
        labels: reference label map: ``[I, J, K]`` array in the image's grid, a Volume, a path, or None (the
            clean prediction is then the reference).
        preprocessing: the model's preprocessing (``orientation``, ``spacing_mm``, ``a_min``...``b_max``), mapped
            with the MONAI geometry; or the grid of :func:`case_grid` (nnU-Net models: nnU-Net's own
            preprocessing).
        name: case name in the results.
        source: where the data comes from, for the manifest; default the path, or a digest of the array. The
            fingerprints hold a digest of the voxels, geometry and labels, whatever the source.

    Raises:
        ValueError: not a 3-D volume, or labels of another shape or not integer.
        TypeError: ``image`` of another type.
    """
    from SpectrumAttackLib.audit.identity import array_digest
    from SpectrumAttackLib.inference.geometry import check_label_array, check_volume_array
    from SpectrumAttackLib.io.volumes import read_volume

    if isinstance(image, (str, os.PathLike)):
        source = source or str(Path(image).absolute())
        image = read_volume(image)
    if isinstance(labels, (str, os.PathLike)):
        labels = read_volume(labels)
    if hasattr(image, "array") and hasattr(image, "affine"):
        array, affine = image.array, image.affine
    elif isinstance(image, (tuple, list)) and len(image) == 2:
        array, affine = image
    else:
        raise TypeError(f"image must be a Volume, an (array_ijk, affine) pair or a NIfTI/NRRD path, got "
                        f"{type(image).__name__}.")
    array = check_volume_array("image", array)
    label_array = labels.array if hasattr(labels, "array") else labels
    if label_array is not None:
        label_array = check_label_array("labels", label_array, array.shape)
    content = array_digest(array, affine, label_array)
    if source is None:
        source = f"array sha256 {content[:16]}"

    def load() -> Any:
        from SpectrumAttackLib.pipeline.case import Case, GeometryGrid

        grid = preprocessing if hasattr(preprocessing, "to_model_grid") else GeometryGrid.from_preprocessing(
            preprocessing)
        return Case.from_volume(array, affine, grid=grid, labels=label_array, name=name, source=source)

    return CaseSource(name=name, source=source, load=load, content=content)


def case_grid(model: Any) -> Any:
    """How volumes in their own grid are mapped onto the grid of ``model`` (a ``LoadedModel``) for an audit:
    nnU-Net's own preprocessing (:class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference`) for nnU-Net models,
    the MONAI geometry of the catalogue preprocessing (:class:`~SpectrumAttackLib.pipeline.case.GeometryGrid`)
    otherwise. For :func:`volume_case`'s ``preprocessing``."""
    from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
    from SpectrumAttackLib.pipeline.case import GeometryGrid

    prep = model.entry.preprocessing
    if isinstance(prep, NnUNetPreprocessing):
        from SpectrumAttackLib.inference.nnunet import NnUNetInference  # needs the nnunet extra

        return NnUNetInference(model.model, prep)
    return GeometryGrid.from_preprocessing(prep)


def _check_one_kind(loaded: Sequence[Any], labels: Sequence[str]) -> None:
    """nnU-Net models are audited on nnU-Net's own grid, so they can only be audited together with nnU-Net models
    of the same configuration (a hardened copy of one, say).

    Raises:
        ValueError: nnU-Net and other models mixed, or nnU-Net models of different configurations.
    """
    from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing

    kinds = [isinstance(m.entry.preprocessing, NnUNetPreprocessing) for m in loaded]
    if any(kinds) and not all(kinds):
        raise ValueError("models must be all nnU-Net models or none, got nnU-Net models "
                         f"({', '.join(n for n, k in zip(labels, kinds, strict=True) if k)}) with others.")
    if all(kinds):
        def grid(prep: Any) -> tuple:
            return (prep.configuration, tuple(prep.spacing_mm), prep.normalisation, tuple(prep.transpose_forward),
                    prep.reader, prep.a_min, prep.a_max, tuple(prep.roi))

        first = grid(loaded[0].entry.preprocessing)
        other = [label for label, m in zip(labels, loaded, strict=True) if grid(m.entry.preprocessing) != first]
        if other:
            raise ValueError(f"models must share one nnU-Net configuration (spacing, normalisation, patch), got "
                             f"{', '.join(other)} planned differently from {labels[0]}.")


def audit_models(models: Any, device: Any = "auto") -> tuple[list[AuditModel], list[Any]]:
    """Audited models from a name, path or ``LoadedModel``, a list of them, or a mapping label → model.

    Returns:
        ``(audit models, loaded models)``; labels are the catalogue names unless given.

    Raises:
        ValueError: no model, two models with one label, or models with different class counts.
    """
    from SpectrumAttackLib.inference.sliding import check_roi
    from SpectrumAttackLib.models import load_model
    from SpectrumAttackLib.models.loading import weights_sha256
    from SpectrumAttackLib.pipeline.case import class_table
    from SpectrumAttackLib.runtime import resolve_device
    from SpectrumAttackLib.workflows.model_grid import resolve_model

    if isinstance(models, Mapping):
        items = list(models.items())
    else:
        items = [(None, m) for m in (models if isinstance(models, (list, tuple)) else [models])]
    if not items:
        raise ValueError("models must name at least one model, got none.")
    out, loaded_models = [], []
    for label, spec in items:
        if isinstance(spec, (str, os.PathLike)):
            spec = load_model(spec, resolve_device(device))
        network, entry = resolve_model(spec, device)
        label = str(label or entry.name)
        if label in [m.label for m in out]:
            raise ValueError(f"models must have distinct names, got {label!r} twice.")
        names, _ = class_table(entry.class_names, [c.rgb for c in entry.classes])
        roi = check_roi(tuple(entry.preprocessing.roi))
        identity = weights_sha256(spec) or entry.name
        out.append(AuditModel(label, network, int(entry.num_classes), tuple(names), tuple(roi), identity))
        loaded_models.append(spec)
    if len({m.num_classes for m in out}) != 1:
        raise ValueError(f"models must share one class count, got {sorted({m.num_classes for m in out})} classes.")
    _check_one_kind(loaded_models, [m.label for m in out])
    return out, loaded_models


def _finished_audit(folder: Path) -> dict[str, Any] | None:
    """``audit.json`` of a finished audit in ``folder``, or None (none there, or not readable as one)."""
    import json

    try:
        document = json.loads((folder / "audit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _describe(models: Sequence[Mapping[str, Any]], precisions: Sequence[str]) -> str:
    names = ", ".join(f"{m.get('label')} ({str(m.get('weights_sha256') or 'no weights file')[:12]})" for m in models)
    return f"{names} in {'/'.join(sorted(precisions)) or 'an unrecorded precision'}"


def _check_same_audit(folder: Path, models: Sequence[AuditModel], precision_used: str) -> None:
    """Refuse ``--resume`` onto a finished audit of other models (labels, weights) or another precision."""
    document = _finished_audit(folder)
    if document is None:
        return
    manifest = document.get("manifest") if isinstance(document.get("manifest"), dict) else {}
    theirs = [m for m in manifest.get("models", []) if isinstance(m, dict)]
    cells = [c for c in (*document.get("cells", []), *document.get("clean", [])) if isinstance(c, dict)]
    their_precisions = {str(p) for p in [manifest.get("precision_used"), *(c.get("precision_used") for c in cells)]
                        if p}
    ours = [_model_record(m) for m in models]
    same_models = [(m.get("label"), m.get("weights_sha256")) for m in theirs] == \
        [(m["label"], m["weights_sha256"]) for m in ours]
    if not same_models or their_precisions != {precision_used}:
        raise ValueError(f"--output holds an audit of {_describe(theirs, list(their_precisions))}, not of "
                         f"{_describe(ours, [precision_used])}; use another folder or --overwrite.")


def _model_record(model: AuditModel) -> dict[str, Any]:
    return {"label": model.label, "weights_sha256": model.identity if len(model.identity) == 64 else None,
            "num_classes": model.num_classes, "roi": list(model.roi)}


def _missing_folders(folder: Path) -> list[Path]:
    """``folder``'s ancestors that do not exist yet, nearest first."""
    missing = []
    for parent in folder.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


@dataclass
class _Output:
    """The output of one audit on rank 0: its staged folder, its lock and the folders created for it."""

    staged: Any
    lock: Any
    created: list[Path]

    def abandon(self) -> None:
        """After a failure: keep the staging folder if it holds finished records (``--resume``), else remove it
        and the folders made for it; release the lock."""
        store = CellStore(self.staged.staging)
        keep = bool(store.read("cells") or store.read("clean"))
        if not keep:
            self.staged.discard()
        self.lock.release()
        for folder in [] if keep else self.created:
            try:
                folder.rmdir()
            except OSError:
                break


def _prepare_folder(output: str | os.PathLike, overwrite: bool, resume: bool, models: Sequence[AuditModel],
                    precision_used: str) -> _Output:
    """Check, lock and stage ``output`` (nothing is created before the checks pass)."""
    import warnings

    from SpectrumAttackLib.audit.lock import OutputLock
    from SpectrumAttackLib.pipeline.staging import StagedOutput, check_writable

    folder = check_writable("--output", output, folder=True)
    if resume:
        _check_same_audit(folder, models, precision_used)
    StagedOutput.refuse_results(folder, "--output", overwrite or resume, AUDIT_RESULTS,
                                overwrite_flag="--overwrite or --resume")
    created = _missing_folders(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--output must be writable, got {str(folder)!r} ({exc.strerror or exc}).") from None
    try:
        lock = OutputLock(folder)
    except ValueError:
        for made in created:
            made.rmdir()
        raise
    try:
        staged = StagedOutput(folder, "--output", overwrite or resume, AUDIT_RESULTS,
                              overwrite_flag="--overwrite or --resume", staging=f".{folder.name}.audit-partial")
    except BaseException:
        lock.release()
        raise
    store = CellStore(staged.staging)
    if not resume:
        earlier = len(store.read("cells"))
        if earlier:
            warnings.warn(f"--output: {earlier} finished cell(s) of an interrupted audit in {str(staged.staging)!r} "
                          f"are discarded (give --resume to keep them).", UserWarning, stacklevel=3)
        store.clear()
    return _Output(staged, lock, created)


def _earlier_records(out: Any, store: CellStore) -> tuple[dict[str, dict], dict[str, dict]]:
    """Finished records of an interrupted run (staging) and of a finished one (the output's audit.json)."""
    import json

    cells, clean = [], []
    finished = out.folder / "audit.json"
    if finished.is_file():
        try:
            document = json.loads(finished.read_text(encoding="utf-8"))
            cells += [c for c in document.get("cells", []) if isinstance(c, dict) and "fingerprint" in c]
            clean += [c for c in document.get("clean", []) if isinstance(c, dict) and "fingerprint" in c]
        except (json.JSONDecodeError, AttributeError):
            pass  # not a readable audit: nothing to reuse, it is replaced at the end
    return CellStore.latest(cells + store.read("cells")), CellStore.latest(clean + store.read("clean"))


def audit(
    image: Any = None,
    *,
    models: Any,
    labels: Any = None,
    cases: Sequence[CaseSource] | None = None,
    grid: str | os.PathLike | Mapping[str, Any] | AuditGrid = "quick",
    corruptions: Any = None,
    corruption_modality: str = "auto",
    frequency_analysis: bool = False,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    seed: int = 0,
    metrics_preset: str = "clinical",
    attack_mode: str = "tiles",
    overlap: float = 0.5,
    tile_batch_size: int = 4,
    sw_batch_size: int = 1,
    levels: Sequence[float] = SSIM_LEVELS,
    ssim_levels: Sequence[float] | None = None,
    steps: int | None = None,
    device: Any = "auto",
    precision: str = "auto",
    name: str = "image",
    arguments: Mapping[str, Any] | None = None,
    ctx: DistContext | None = None,
    progress: ProgressCallback | None = None,
) -> AuditResult:
    """Audit the robustness of one or several segmentation models.

    Args:
        image: one volume (a Volume, ``(array_ijk, affine)`` or a NIfTI/NRRD path) in input units; or None with
            ``cases``.
        models: a catalogue name, model file or ``LoadedModel``; a list of them; or a mapping label → model. All
            must share one class count; the cases are put in the first model's grid.
        labels: reference labels of ``image`` (array in its grid, Volume or path); None: the clean prediction.
        cases: prepared cases (:class:`~SpectrumAttackLib.audit.runner.CaseSource`, e.g. a dataset split) instead
            of ``image``.
        grid: ``"quick"``, ``"standard"``, ``"paper"``, a YAML/JSON grid file, a grid mapping or an
            :class:`~SpectrumAttackLib.audit.grid.AuditGrid`.
        corruptions: the corruption track, replacing the grid's: ``"all"``, a list of names (severities 1–5), a
            mapping name → ``{"severity": [...]}``, or ``"none"``; None keeps the grid's (the ``standard`` preset
            runs all). One cell per corruption × severity, scored like the attack cells; the summary adds ROOD-MRI's
            Overall and Degradation scores (:mod:`SpectrumAttackLib.audit.corruption_scores`).
        corruption_modality: ``"auto"`` (CT when the model's window is in HU), ``"ct"`` (noise σ in HU) or ``"mr"``.
        frequency_analysis: also analyse each attack cell's perturbation by frequency (Dice with only the low /
            middle / high block-DCT band kept, and a radial sweep; :mod:`SpectrumAttackLib.analysis.frequency`),
            stored in the cell under ``"frequency"`` and summarised per attack and budget. Cells reused by
            ``resume`` keep what they had.
        output: folder for the result files; None writes nothing.
        overwrite: replace earlier results in ``output``.
        resume: continue an interrupted audit into ``output`` (its finished cells are kept, not redone).
        seed: seed of every attack (each cell uses it, so results do not depend on the order or the rank).
        metrics_preset: ``"clinical"`` (foreground Dice, HD95 in mm; default) or ``"paper"``.
        attack_mode, overlap, tile_batch_size, sw_batch_size: whole-volume attack and inference settings (see
            :func:`~SpectrumAttackLib.inference.tiles.attack_volume`).
        levels: 3-D SSIM levels of the robust Dice over the grid's cells (SSIM ≥ level). Default (0.99, 0.95, 0.90).
        ssim_levels: 3-D SSIM levels every family with a strength knob is driven to, per volume
            (:func:`~SpectrumAttackLib.attacks.ssim_target.search_levels`); replaces the grid's ``ssim_levels``.
            The summary's ``at_levels`` then compares every family at the same SSIM per volume.
        steps: steps of every grid entry whose attack takes steps (``--steps``; e.g. the ``sea`` preset on CPUs).
        device: where models given by name are loaded.
        precision: numeric precision of the model passes (clean and adversarial predictions, attacks): ``"auto"``,
            ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see :mod:`SpectrumAttackLib.precision`), resolved for the models'
            device before anything runs; the resolved precision is part of every fingerprint, so ``resume`` never
            mixes precisions (not even where ``auto`` resolves otherwise). Each record and the manifest hold
            ``precision_used``.
        name: case name of ``image``.
        arguments: the caller's arguments, stored in the manifest (the CLI passes its flags).
        ctx: distributed context (the CLI's ``launch`` gives it); None: this process alone.
        progress: called after each cell with ``Progress(done, total, "audit", message)``.

    Returns:
        :class:`AuditResult` (on every rank under ``torchrun``; only rank 0 writes files).

    Raises:
        ValueError: a bad grid entry, preset, setting, model set, image or labels (one message naming it);
            ``output`` holds results without ``overwrite``/``resume``, or (``resume``) a finished audit of other
            models or another resolved precision; another audit is writing into ``output``.

    Example:
        >>> result = audit("ct.nii.gz", models=["unet-btcv-3mm"], labels="seg.nii.gz", grid="quick")
        >>> result.summary["per_model"]["unet-btcv-3mm"]["robust_dice"]
    """
    from SpectrumAttackLib.attacks.base import model_device
    from SpectrumAttackLib.audit.identity import files_digest
    from SpectrumAttackLib.distributed import on_main, resolve_context
    from SpectrumAttackLib.precision import resolve_precision

    start = time.perf_counter()
    the_grid = resolve_grid(grid)
    if corruptions is not None or corruption_modality != "auto":
        kept = {e.corruption: {"severity": list(e.budgets)} for e in the_grid.corruptions}
        the_grid = with_corruptions(the_grid, kept if corruptions is None else corruptions, corruption_modality)
    if steps is not None or ssim_levels is not None:
        steps = None if steps is None else check_int("steps", steps, 1)
        the_grid = with_overrides(the_grid, steps, ssim_levels)
    metrics_preset = check_choice("metrics_preset", metrics_preset, ("clinical", "paper"))
    attack_mode = check_choice("attack_mode", attack_mode, ("tiles", "sliding-window"))
    overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
    tile_batch_size = check_int("tile_batch_size", tile_batch_size, 1)
    sw_batch_size = check_int("sw_batch_size", sw_batch_size, 1)
    levels = tuple(check_range("levels", v, 0.0, 1.0) for v in levels)
    precision = check_precision(precision)
    if overwrite and resume:
        raise ValueError("--resume must not be combined with --overwrite, got both.")
    if (image is None) == (cases is None):
        raise ValueError("image must be given, or cases, but not both; got "
                         f"{'both' if image is not None else 'neither'}.")
    ctx = ctx or resolve_context(None)
    audited, loaded = audit_models(models, device)
    precision_used = resolve_precision(precision, model_device(audited[0].network)).name
    prep = loaded[0].entry.preprocessing
    if cases is None:
        cases = [volume_case(image, labels, preprocessing=case_grid(loaded[0]), name=name)]
    cases = [c if c.content else dataclasses.replace(c, content=files_digest([c.source])) for c in cases]
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"cases must have distinct names, got {sorted({n for n in names if names.count(n) > 1})}.")
    settings = AuditSettings(seed=int(seed), metrics_preset=metrics_preset, attack_mode=attack_mode,
                             overlap=overlap, sw_batch_size=sw_batch_size, tile_batch_size=tile_batch_size,
                             precision=precision_used,
                             preprocessing={"orientation": prep.orientation, "spacing_mm": list(prep.spacing_mm),
                                            "a_min": prep.a_min, "a_max": prep.a_max, "b_min": prep.b_min,
                                            "b_max": prep.b_max})
    plan = plan_cells(cases, audited, the_grid, settings)

    out, store = None, None
    held: list[_Output] = []  # rank 0's lock and folders
    if output is not None:
        def prepare() -> Any:
            held.append(_prepare_folder(output, overwrite, resume, audited, precision_used))
            return held[0].staged

        out = on_main(prepare, ctx)
        store = CellStore(out.staging, ctx.rank)
    try:
        return _run(cases, audited, plan, settings, the_grid, out, store, resume, ctx, progress, levels, start,
                    manifest={"command": "audit", "arguments": dict(arguments or {}), "seed": settings.seed,
                              "settings": {"metrics_preset": metrics_preset, "attack_mode": attack_mode,
                                           "overlap": overlap, "tile_batch_size": tile_batch_size,
                                           "sw_batch_size": sw_batch_size, "precision": precision,
                                           "preprocessing": settings.preprocessing, "levels": list(levels)},
                              "precision_used": precision_used}, frequency=bool(frequency_analysis))
    except BaseException:
        for output_held in held:
            output_held.abandon()
        raise
    finally:
        for output_held in held:
            output_held.lock.release()


def _run(cases: Sequence[CaseSource], audited: Sequence[AuditModel], plan: Sequence[Any], settings: AuditSettings,
         the_grid: AuditGrid, out: Any, store: CellStore | None, resume: bool, ctx: DistContext,
         progress: ProgressCallback | None, levels: Sequence[float], start: float,
         manifest: dict[str, Any], frequency: bool = False) -> AuditResult:
    """Reuse what ``resume`` finds, run the other cells (``frequency``: with their frequency analysis), summarise,
    and write the results (rank 0)."""
    from SpectrumAttackLib.distributed import broadcast_object
    from SpectrumAttackLib.report.manifest import git_state, package_versions
    from SpectrumAttackLib.runtime import device_info

    done: dict[str, dict] = {}
    done_clean: dict[str, dict] = {}
    if out is not None and resume:
        done, done_clean = broadcast_object(_earlier_records(out, store) if ctx.is_main else None, ctx)
    wanted = {fingerprint for s in plan for fingerprint in s.fingerprints}
    done = {k: v for k, v in done.items() if k in wanted}
    new_cells, new_clean = run_cells(cases, audited, plan, settings, done=done, done_clean=dict(done_clean),
                                     store=store, ctx=ctx, progress=progress, frequency=frequency)
    records = {**done, **{c["fingerprint"]: c for c in new_cells}}
    cells = [records[fingerprint] for s in plan for fingerprint in s.fingerprints]
    pairs = {(c.name, m.label) for c in cases for m in audited}
    clean_by_pair = {(r["case"], r["model"]): r for r in [*done_clean.values(), *new_clean]}
    clean = [clean_by_pair[(c.name, m.label)] for c in cases for m in audited if (c.name, m.label) in clean_by_pair]
    if len(clean) != len(pairs):
        raise RuntimeError("audit must have a clean record for every case and model; some are missing.")
    summary = summarise(cells, clean, levels)
    manifest = {
        **manifest,
        "grid": the_grid.as_mapping(),
        "models": [_model_record(m) for m in audited],
        "cases": [{"name": c.name, "source": c.source, "content_sha256": c.content} for c in cases],
        "cells": len(cells), "cells_reused": len(done), "processes": ctx.world_size,
        "seconds": time.perf_counter() - start,
        "attack_seconds": sum(c["seconds"] for c in new_cells),
        "versions": package_versions(), "device": device_info(), "git_commit": git_state()["commit"],
    }
    folder = None
    if out is not None and ctx.is_main:
        title = f"Robustness audit: {', '.join(m.label for m in audited)} on {len(cases)} case(s), {the_grid.name} grid"
        write_audit_files(out.staging, cells, clean, summary, manifest, title)
        store.clear()
        folder = out.commit()
    return AuditResult(cells=cells, clean=clean, summary=summary, manifest=manifest, folder=folder, reused=len(done))
