"""The audit engine: every cell (case × model × attack × budget) attacked, predicted and scored once.

For each case and model the clean prediction is made once (per process) and reused by all of that pair's cells;
cells are independent (each attack is built afresh with the audit's seed), so their order, the process that runs
them and an interruption in between do not change their results. Finished records go to a :class:`CellStore`
as they finish; under ``torchrun`` the pending cells are shared out over the ranks and every rank gets all
records back (rank 0 writes the report).

All work happens in the model grid of each case (intensities in [0, 1]); the perturbation norms are in those
units (``linf · 255`` is on the voxel attacks' ε scale).

A cell of the corruption track (:class:`~SpectrumAttackLib.audit.corruption_grid.GridCorruption`) applies a scanner
artefact at one severity (:mod:`SpectrumAttackLib.corruptions`, seeded with the audit's seed) to the same model-grid
image instead of an attack, clamps it to [0, 1] as attacks are, and is predicted and scored the same way; its record
has ``"kind": "corruption"`` and the severity's physical ``value`` and ``unit``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from SpectrumAttackLib.audit.corruption_grid import GridCorruption, resolve_modality
from SpectrumAttackLib.audit.grid import AuditGrid, GridAttack
from SpectrumAttackLib.audit.store import CellStore
from SpectrumAttackLib.metrics.volume_ssim import WINDOW as SSIM_WINDOW
from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM
from SpectrumAttackLib.models.nnunet import NnUNetEnsemble
from SpectrumAttackLib.pipeline.case import Case
from SpectrumAttackLib.runtime import Progress, ProgressCallback

if TYPE_CHECKING:
    from SpectrumAttackLib.distributed import DistContext

__all__ = ["AuditModel", "AuditSettings", "CaseSource", "CellSpec", "clean_fingerprints", "plan_cells", "run_cells"]


@dataclass(frozen=True)
class CaseSource:
    """One case of the audit, loaded on demand.

    Attributes:
        name: case name, unique in the audit (``img0001``).
        source: where it comes from (a file path), for the manifest.
        load: returns the case in the model grid (:class:`~SpectrumAttackLib.pipeline.case.Case`).
        content: a digest of the case's data (:mod:`SpectrumAttackLib.audit.identity`: the image and label files'
            bytes, or the voxels, geometry and labels), part of every fingerprint; empty: the digest of the file
            at ``source``, read when the cells are planned.
    """

    name: str
    source: str
    load: Callable[[], Case]
    content: str = ""


@dataclass(frozen=True)
class AuditModel:
    """One audited model.

    Attributes:
        label: its name in the results (unique).
        network: the segmentation network (eval mode) mapping ``[B, 1, H, W, D]`` to logits ``[B, K, H, W, D]``.
        num_classes: K, background included.
        class_names: K names, background first.
        roi: sliding-window / tile size ``(h, w, d)`` in voxels.
        identity: what identifies the weights in fingerprints: their sha256, else the model's name.
    """

    label: str
    network: torch.nn.Module
    num_classes: int
    class_names: tuple[str, ...]
    roi: tuple[int, int, int]
    identity: str


@dataclass(frozen=True)
class AuditSettings:
    """Settings shared by every cell (see :func:`SpectrumAttackLib.workflows.audit`); ``precision`` is the
    *resolved* precision (``"fp32"``, ``"bf16"`` or ``"fp16"``, never ``"auto"``), so that fingerprints made where
    ``auto`` means bf16 never match those made where it means fp32."""

    seed: int = 0
    metrics_preset: str = "clinical"
    attack_mode: str = "tiles"
    overlap: float = 0.5
    sw_batch_size: int = 1
    tile_batch_size: int = 4
    precision: str = "auto"
    preprocessing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellSpec:
    """One planned cell: indices into the case and model lists, the grid entry, the budget and a fingerprint.

    A *level unit* (``levels`` not empty, ``budget`` the search's first budget) drives the entry's strength knob to
    each 3-D SSIM level in one search whose runs the levels share; it gives one record per level.
    """

    index: int
    case: int
    model: int
    entry: GridAttack | GridCorruption
    budget: Any
    fingerprint: str
    levels: tuple[float, ...] = ()

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """The fingerprints of the records this spec gives (one per level for a level unit)."""
        if not self.levels:
            return (self.fingerprint,)
        return tuple(f"{self.fingerprint}@{level:.6g}" for level in self.levels)


#: how a level unit searches (part of its fingerprint): SSIM tolerance and attack runs at most per volume.
LEVEL_SEARCH = {"tolerance": 0.002, "max_runs": 8, "min_weight": 0.9}


def _fingerprint(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _content(case: CaseSource) -> str:
    """The digest of ``case``'s data (its own, or that of the file at its source)."""
    from SpectrumAttackLib.audit.identity import files_digest

    return case.content or files_digest([case.source])


def _clean_fingerprint(case: CaseSource, model: AuditModel, settings: AuditSettings, content: str) -> str:
    return _fingerprint({"case": case.name, "content": content, "model": model.label, "weights": model.identity,
                         "preset": settings.metrics_preset, "overlap": settings.overlap,
                         "precision": settings.precision, "preprocessing": settings.preprocessing})


def clean_fingerprints(cases: Sequence[CaseSource], models: Sequence[AuditModel],
                       settings: AuditSettings) -> dict[tuple[int, int], str]:
    """The fingerprint of each case × model clean record, by ``(case index, model index)``."""
    contents = [_content(case) for case in cases]
    return {(c, m): _clean_fingerprint(case, model, settings, contents[c])
            for c, case in enumerate(cases) for m, model in enumerate(models)}


def plan_cells(cases: Sequence[CaseSource], models: Sequence[AuditModel], grid: AuditGrid,
               settings: AuditSettings) -> list[CellSpec]:
    """Every cell of the audit, case by case, then model, then grid order.

    Each fingerprint holds the case's content digest (not its path), the model's weights, the attack, its
    parameters and every setting, the resolved precision included.
    """
    from SpectrumAttackLib.attacks.ssim_target import KNOBS

    plan = []
    common = asdict(settings)
    for c, case in enumerate(cases):
        content = _content(case)
        for m, model in enumerate(models):
            for entry, budget in grid.cells():
                kind = {"kind": "corruption"} if isinstance(entry, GridCorruption) else {}
                fingerprint = _fingerprint({**common, "case": case.name, "content": content, "model": model.label,
                                            "weights": model.identity, "attack": entry.attack,
                                            "params": entry.cell_params(budget), **kind})
                plan.append(CellSpec(len(plan), c, m, entry, budget, fingerprint))
            for entry in grid.attacks if grid.ssim_levels else ():
                if entry.budget_name not in KNOBS:
                    continue
                start = sorted(entry.budgets)[len(entry.budgets) // 2]  # a grid cell's: its run is reused
                fingerprint = _fingerprint({**common, "case": case.name, "source": case.source, "model": model.label,
                                            "weights": model.identity, "attack": entry.attack,
                                            "params": entry.cell_params(start), "ssim_levels": grid.ssim_levels,
                                            "search": LEVEL_SEARCH})
                plan.append(CellSpec(len(plan), c, m, entry, start, fingerprint, grid.ssim_levels))
    return plan


def _clean_record(case: Case, model: AuditModel, metrics: dict[str, Any], fingerprint: str,
                  precision_used: str) -> dict[str, Any]:
    section = metrics["clean"]
    return {"case": case.name, "model": model.label, "dice": section["dice"], "hd95": section["hd95"],
            "dice_per_class": section["dice_per_class"], "hd95_per_class": section["hd95_per_class"],
            "reference": metrics["reference"], "units": metrics["units"], "precision_used": precision_used,
            "fingerprint": fingerprint}


def _cell_record(spec: CellSpec, case: Case, model: AuditModel, metrics: dict[str, Any], clean_ssim: VolumeSSIM | None,
                 clean_images: torch.Tensor, adversarial: torch.Tensor, precision_used: str, attack_seconds: float,
                 cell_seconds: float, budget: Any = None) -> dict[str, Any]:
    budget = spec.budget if budget is None else budget
    adv = metrics["adversarial"]
    delta = adversarial.detach().float().sub(clean_images).cpu()
    ssim_3d = adv["ssim"] if metrics["preset"] == "clinical" or clean_ssim is None else clean_ssim(adversarial[0, 0])
    return {
        "case": case.name, "model": model.label, "attack": spec.entry.name, "attack_name": spec.entry.attack,
        "ensemble": spec.entry.ensemble, "budget_name": spec.entry.budget_name,
        "budget": budget, "params": spec.entry.cell_params(budget),
        "dice": adv["dice"], "hd95": adv["hd95"], "clean_dice": metrics["clean"]["dice"],
        "dice_per_class": adv["dice_per_class"], "hd95_per_class": adv["hd95_per_class"],
        "ssim_3d": ssim_3d, "ssim": adv["ssim"], "psnr": adv["psnr"],
        "l2": float(delta.norm()), "linf": float(delta.abs().max()),
        "fooling_rate": adv["fooling_rate"], "lpips": adv["lpips"], "lpips_status": adv["lpips_status"],
        "precision_used": precision_used, "seconds": attack_seconds, "cell_seconds": cell_seconds,
        "fingerprint": spec.fingerprint, "kind": getattr(spec.entry, "kind", "attack"),
    }


def _corrupt(spec: CellSpec, case: Case, images: torch.Tensor, settings: AuditSettings
             ) -> tuple[torch.Tensor, dict[str, Any], float]:
    """A corruption cell's image (clamped to [0, 1]), its record fields (value, unit, modality) and its seconds."""
    from SpectrumAttackLib import corruptions

    start = time.perf_counter()
    modality, hu_per_unit = resolve_modality(spec.entry.modality, settings.preprocessing)
    corruption = corruptions.create(spec.entry.corruption, spec.budget, seed=settings.seed, modality=modality,
                                    hu_per_unit=hu_per_unit)
    corrupted = corruption(images, case.spacing_mm).clamp(0.0, 1.0)
    config = corruption.config
    return corrupted, {"value": config["value"], "unit": config["unit"], "modality": modality}, \
        time.perf_counter() - start


def _metrics(case: Case, model: AuditModel, adversarial: torch.Tensor, seg_clean: torch.Tensor,
             seg_adv: torch.Tensor, preset: str, clean_section: dict[str, Any] | None = None,
             clean_ssim: VolumeSSIM | None = None) -> dict[str, Any]:
    from SpectrumAttackLib.metrics.evaluate import compute_case_metrics

    return compute_case_metrics(
        case.images[0, 0], adversarial[0, 0].detach().cpu(), seg_clean[0, 0].cpu(), seg_adv[0, 0].cpu(),
        labels=None if case.labels is None else case.labels[0, 0], num_classes=model.num_classes,
        class_names=list(model.class_names), spacing_mm=case.spacing_mm, preset=preset, clean_section=clean_section,
        clean_ssim=clean_ssim,
    )


def run_cells(
    cases: Sequence[CaseSource],
    models: Sequence[AuditModel],
    plan: Sequence[CellSpec],
    settings: AuditSettings,
    *,
    done: dict[str, dict[str, Any]],
    done_clean: dict[str, dict[str, Any]],
    store: CellStore | None,
    ctx: DistContext,
    progress: ProgressCallback | None = None,
    frequency: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run this rank's share of the cells not in ``done`` and return every rank's new records.

    Args:
        cases, models, plan: the audit (see :func:`plan_cells`).
        settings: shared settings.
        done, done_clean: records already finished (``--resume``), by fingerprint; skipped here.
        store: where each record is written as it finishes (``None``: kept in memory only).
        ctx: the process context; pending cells are shared out strided over ``ctx.world_size`` ranks.
        progress: called after each cell with ``Progress(done, total, "audit", message)`` over this rank's cells;
            raising from it stops the audit (finished cells stay in the store).
        frequency: add to each attack cell run here the frequency analysis of its perturbation
            (:func:`~SpectrumAttackLib.analysis.frequency.frequency_analysis`, 8³ blocks, against the cell's
            reference) under ``"frequency"``; it changes no other number of the cell.

    Returns:
        ``(new cell records, new clean records)`` of all ranks, cells in plan order.

    A progress bar with ETA over this rank's cells is drawn on stderr when it is a terminal.
    """
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.attacks.base import model_device
    from SpectrumAttackLib.attacks.losses import class_map
    from SpectrumAttackLib.distributed import gather_results, shard
    from SpectrumAttackLib.inference.sliding import predict_logits
    from SpectrumAttackLib.inference.ssim_budget import attack_volume_at_ssim
    from SpectrumAttackLib.inference.tiles import attack_volume
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.progress import progress_bar

    pending = [spec for spec in plan if not all(fingerprint in done for fingerprint in spec.fingerprints)]
    mine = shard(pending, ctx.rank, ctx.world_size)
    clean_keys = clean_fingerprints(cases, models, settings) if mine else {}
    # this rank's level searches: (case, model, family) → their first budget
    searches = {(spec.case, spec.model, spec.entry.name): spec.budget for spec in mine if spec.levels}

    def work() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        new_cells: list[dict[str, Any]] = []
        new_clean: list[dict[str, Any]] = []
        loaded: tuple[int, Case] | None = None
        clean_cache: dict[int, tuple[torch.Tensor, dict[str, Any]]] = {}
        # per (case, model, family): the grid's cell at the level search's first budget, kept for that search
        grid_runs: dict[tuple[int, int, str], dict[float, Any]] = {}
        desc = "audit" if ctx.world_size == 1 else f"audit rank {ctx.rank}"
        with progress_bar(len(mine), desc, unit="cell", log_lines=True) as bar:
            for count, spec in enumerate(mine):
                start = time.perf_counter()
                if loaded is None or loaded[0] != spec.case:
                    loaded, clean_cache, grid_runs = (spec.case, cases[spec.case].load()), {}, {}
                    clean = loaded[1].images[0, 0]  # the case's 3-D SSIM window statistics, once
                    clean_ssim = VolumeSSIM(clean) if min(clean.shape) >= SSIM_WINDOW else None
                case = loaded[1]
                model = models[spec.model]
                if isinstance(model.network, NnUNetEnsemble):
                    model.network.use(case.mapping)  # nnU-Net normalises with this case's window and statistics
                device = model_device(model.network)
                images = case.images.to(device)
                if spec.model not in clean_cache:
                    _check_labels(case, model)
                    seg_clean = class_map(predict_logits(model.network, images, model.roi, settings.overlap,
                                                         settings.sw_batch_size, precision=settings.precision))
                    metrics = _metrics(case, model, case.images, seg_clean, seg_clean, settings.metrics_preset,
                                       clean_ssim=clean_ssim)
                    clean_cache[spec.model] = seg_clean, metrics["clean"]
                    key = clean_keys[(spec.case, spec.model)]
                    if key not in done_clean:
                        record = _clean_record(case, model, metrics, key,
                                               resolve_precision(settings.precision, device).name)
                        done_clean[key] = record
                        new_clean.append(record)
                        if store is not None:
                            store.append("clean", record)
                seg_clean, clean_section = clean_cache[spec.model]
                targets = seg_clean if case.labels is None else case.labels.to(device)
                extra: dict[str, Any] = {}
                if isinstance(spec.entry, GridCorruption):
                    adversarial, extra, attack_seconds = _corrupt(spec, case, images, settings)
                    runs = [(adversarial, None, None)]
                else:
                    volume = {"roi": model.roi, "mode": settings.attack_mode,
                              "tile_batch_size": settings.tile_batch_size, "overlap": settings.overlap,
                              "sw_batch_size": settings.sw_batch_size}
                    params = {**spec.entry.cell_params(spec.budget), "seed": settings.seed,
                              "precision": settings.precision}
                    start_key = (spec.case, spec.model, spec.entry.name)
                    if spec.levels:  # the grid's cell at the search's first budget, when this rank just ran it
                        reuse = grid_runs.pop(start_key, {})
                        results = attack_volume_at_ssim(spec.entry.attack, model.network, images, targets,
                                                        spec.levels, params=params, reuse=reuse, **LEVEL_SEARCH,
                                                        **volume)
                    else:
                        results = [(attack_volume(attacks.create(spec.entry.attack, model.network, **params), images,
                                                  targets, **volume), None)]
                        if searches.get(start_key) == spec.budget:
                            grid_runs[start_key] = {spec.budget: results[0][0]}
                    attack_seconds = max(result.seconds for result, _ in results) / len(results)  # a search's runs
                    runs = [(result.adversarial, level, result.config.get("ssim_search")) for result, level in results]
                records = []
                for (adversarial, level, search), fingerprint in zip(runs, spec.fingerprints, strict=True):
                    seg_adv = class_map(predict_logits(model.network, adversarial, model.roi, settings.overlap,
                                                       settings.sw_batch_size, precision=settings.precision))
                    metrics = _metrics(case, model, adversarial, seg_clean, seg_adv, settings.metrics_preset,
                                       clean_section, clean_ssim)
                    record = _cell_record(spec, case, model, metrics, clean_ssim, images, adversarial,
                                          resolve_precision(settings.precision, device).name,
                                          attack_seconds, time.perf_counter() - start,
                                          budget=None if level is None else level.budget)
                    record.update(extra)
                    record["voxel_counts"] = metrics["adversarial"]["voxel_counts"]
                    record["fingerprint"] = fingerprint
                    if level is not None:
                        record.update(ssim_level=level.target, ssim_search=search,
                                      search_seconds=attack_seconds * len(runs))
                        if store is not None:
                            _slice_figure(store.figure(fingerprint), case, model, images, adversarial,
                                          seg_clean, seg_adv, metrics, record)
                    if frequency and not isinstance(spec.entry, GridCorruption):
                        from SpectrumAttackLib.analysis.frequency import frequency_analysis, model_predictor

                        predictor = model_predictor(model.network, model.roi, settings.overlap,
                                                    settings.sw_batch_size, settings.precision)
                        record["frequency"] = frequency_analysis(predictor, images, adversarial, targets,
                                                                 model.num_classes)
                    records.append(record)
                for record in records:
                    new_cells.append(record)
                    if store is not None:
                        store.append("cells", record)
                message = "; ".join(_cell_line(record) for record in records)
                bar.update(message=message)
                if progress is not None:
                    progress(Progress(count + 1, len(mine), "audit", message))
        return new_cells, new_clean

    shares = gather_results(work, ctx)
    order = {fingerprint: (spec.index, n) for spec in plan for n, fingerprint in enumerate(spec.fingerprints)}
    cells = sorted((c for share in shares for c in share[0]), key=lambda c: order[c["fingerprint"]])
    clean = list({c["fingerprint"]: c for share in shares for c in share[1]}.values())
    return cells, clean


def _slice_figure(path: Any, case: Case, model: AuditModel, images: torch.Tensor, adversarial: torch.Tensor,
                  seg_clean: torch.Tensor, seg_adv: torch.Tensor, metrics: dict[str, Any],
                  record: dict[str, Any]) -> None:
    """The case report's slices (clean and adversarial image, perturbation, both segmentations) of one cell, small,
    for the audit report to embed where the cell sets a level's worst case."""
    from matplotlib import colormaps

    from SpectrumAttackLib.report.figure import write_case_report

    palette = colormaps["tab20"]
    title = (f"{case.name} {model.label}: {record['attack']} {record['budget_name']} {record['budget']:.4g} "
             f"at 3-D SSIM {record['ssim_3d']:.4f} (level {record['ssim_level']})")
    write_case_report(path, images[0, 0].cpu(), adversarial[0, 0].detach().cpu(), seg_clean[0, 0].cpu(),
                      seg_adv[0, 0].cpu(), class_names=list(model.class_names),
                      class_colors=[palette(i % 20)[:3] for i in range(model.num_classes)], metrics=metrics,
                      title=title, spacing_mm=case.spacing_mm, dpi=40)


def _cell_line(record: dict[str, Any]) -> str:
    """One cell's figures for the progress line."""
    level = f" (SSIM level {record['ssim_level']}: {record['ssim_search']['status']})" if "ssim_level" in record \
        else ""
    budget = record["budget"] if isinstance(record["budget"], str) else f"{record['budget']:.4g}"
    if record.get("ssim_search", {}).get("weight", 1.0) != 1.0:
        budget += f"×{record['ssim_search']['weight']:.3f}"
    def shown(key: str, spec: str) -> str:  # None where a figure is undefined (no foreground, no SSIM)
        return "n/a" if record.get(key) is None else format(record[key], spec)

    return (f"{record['case']} {record['model']} {record['attack']} {record['budget_name']}={budget}"
            f"{level}: Dice {shown('dice', '.3f')} (clean {shown('clean_dice', '.3f')}), "
            f"3-D SSIM {shown('ssim_3d', '.4f')}, {shown('seconds', '.1f')} s")


def _check_labels(case: Case, model: AuditModel) -> None:
    """Labels of ``case`` must be classes of ``model`` (several models of one class count share the cases)."""
    if case.labels is not None and int(case.labels.max()) >= model.num_classes:
        raise ValueError(f"labels of case {case.name} must be below the {model.num_classes} classes of model "
                         f"{model.label!r}, got {int(case.labels.max())}.")
