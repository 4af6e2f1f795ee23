"""``spectrum-attack transfer``: black-box transferability of an attack between models.

Adversarial images made on each source model (``--models``) are evaluated on every target model (the same list):
the diagonal is the white-box attack, the rest is transfer. Every case of the split is preprocessed once with
one pipeline (the first model's preprocessing unless the data flags say otherwise), so all models see the same
grid; each model uses its own ROI for tiles and sliding windows.

``--models`` items: a catalogue name (``unet-btcv-3mm``), a TorchScript file or MONAI bundle folder, or a
checkpoint as ``ARCHITECTURE=PATH`` (``unet-r=runs/model_best.pt``); the architecture's sizes come from the usual
flags (``--feature_size``, ``--hidden_size``, ``--unet_channels``, ...). A plain checkpoint path uses
``--model_name``.

Writes into ``--output``: ``transfer_matrix.csv`` (rows: source models; columns: mean adversarial Dice and Dice
drop on each target; a ``clean`` row with each target's clean Dice), ``transfer.json`` (the same plus per-case
values and the settings), ``transfer_heatmap.png`` and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackLib.cli.args import (
    ATTACK_FLAGS,
    CASE_FLAGS,
    DATA_FLAGS,
    MODEL_FLAGS,
    add_seed_arguments,
    warn_ignored_flags,
)
from SpectrumAttackLib.cli.cases import load_split
from SpectrumAttackLib.cli.converters import attack_params_from_args, data_config_from_args, model_from_args
from SpectrumAttackLib.models.catalogue import ARCHITECTURES
from SpectrumAttackLib.pipeline.case import Case, case_transform, class_table
from SpectrumAttackLib.pipeline.scoring import score_case, segment
from SpectrumAttackLib.pipeline.staging import TRANSFER_RESULTS, StagedOutput

__all__ = ["USED_FLAGS", "add_parser", "parse_model_item", "run", "write_heatmap"]

#: flags this subcommand reads; any other flag given is reported as having no effect.
USED_FLAGS = {
    *ATTACK_FLAGS, *DATA_FLAGS, *MODEL_FLAGS, *CASE_FLAGS, "attack_name",
    "infer_overlap", "sw_batch_size", "attack_mode",
    "tile_batch_size", "overwrite", "metrics_preset", "gen_val_adv_mode", "gen_train_adv_mode", "precision",
}
_ARCHITECTURES = ARCHITECTURES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``transfer`` subcommand (every seed flag, plus ``--models`` and ``--output``)."""
    parser = subparsers.add_parser(
        "transfer",
        help="attack on each model, evaluate on every model: a transferability matrix",
        description="Make adversarial images of the split's cases on each source model and evaluate them on "
        "every target model; write the matrix of mean Dice and Dice drop as CSV, JSON and a heat map.",
    )
    parser.add_argument("--models", nargs="+", required=True, metavar="MODEL",
                        help="catalogue names, TorchScript files, bundle folders or ARCHITECTURE=CHECKPOINT")
    parser.add_argument("--output", required=True, help="folder for the matrix, the heat map and the manifest")
    add_seed_arguments(parser)


def parse_model_item(item: str) -> tuple[str, str | None]:
    """``"unet-r=runs/best.pt"`` → ``("runs/best.pt", "unet-r")``; anything else → ``(item, None)``."""
    head, sep, tail = item.partition("=")
    if sep and head in _ARCHITECTURES:
        if not tail:
            raise ValueError(f"--models item must be ARCHITECTURE=PATH with a path, got {item!r}.")
        return tail, head
    return item, None


def _label(item: str, used: set[str]) -> str:
    path, architecture = parse_model_item(item)
    label = f"{architecture}:{Path(path).name}" if architecture else Path(path).name or path
    if label in used:
        raise ValueError(f"--models must name each model once, got {item!r} twice.")
    used.add(label)
    return label


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def write_heatmap(path: Path, sources: list[str], targets: list[str], dice: np.ndarray, drop: np.ndarray,
                  title: str) -> None:
    """Two heat maps (mean adversarial Dice; Dice drop), sources as rows and targets as columns, values printed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 + 2.4 * len(targets), 1.5 + 0.8 * len(sources)), layout="constrained")
    FigureCanvasAgg(fig)
    for index, (values, name, cmap) in enumerate(((dice, "mean Dice under attack", "viridis"),
                                                  (drop, "Dice drop (clean - adversarial)", "magma"))):
        ax = fig.add_subplot(1, 2, index + 1)
        shown = np.where(np.isfinite(values), values, np.nan)
        image = ax.imshow(shown, cmap=cmap, vmin=min(0.0, float(np.nanmin(shown)) if np.isfinite(shown).any() else 0),
                          vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(sources)), sources, fontsize=8)
        ax.set_xlabel("target model (evaluated)")
        ax.set_ylabel("source model (attacked)")
        ax.set_title(name, fontsize=9)
        for (row, col), value in np.ndenumerate(values):
            ax.text(col, row, "n/a" if not np.isfinite(value) else f"{value:.3f}", ha="center", va="center",
                    color="white" if np.isfinite(value) and value < 0.6 else "black", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)


def run(args: argparse.Namespace) -> int:
    """Attack on every source, evaluate on every target; write the matrix. Returns 0."""
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.inference.tiles import attack_volume
    from SpectrumAttackLib.pipeline.validate import check_blocks_fit_attack
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.runtime import resolve_device

    name, params = attack_params_from_args(args)
    warn_ignored_flags(args, USED_FLAGS, "transfer")
    used: set[str] = set()
    model_names = [_label(item, used) for item in args.models]
    entries = load_split(args)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device, name="--precision")
    models = [model_from_args(args, device, *parse_model_item(item)) for item in args.models]
    class_counts = {m.entry.num_classes for m in models}
    if len(class_counts) != 1:
        raise ValueError(f"--models must share one class count, got {sorted(class_counts)} classes.")
    configs = [data_config_from_args(args, m.entry.preprocessing) for m in models]
    cfg = configs[0]
    for label, own in zip(model_names[1:], configs[1:], strict=True):
        if own.spacing != cfg.spacing or (own.a_min, own.a_max) != (cfg.a_min, cfg.a_max):
            warnings.warn(f"model {label} expects spacing {list(own.spacing)} mm and window "
                          f"[{own.a_min:g}, {own.a_max:g}]; all models are evaluated in the grid of the first "
                          f"({list(cfg.spacing)} mm, [{cfg.a_min:g}, {cfg.a_max:g}]).", UserWarning, stacklevel=2)
    rois = [c.roi for c in configs]
    names, _ = class_table(models[0].entry.class_names, [c.rgb for c in models[0].entry.classes])
    attackers = [attacks.create(name, m.model, precision=args.precision, **params) for m in models]
    for roi in rois:
        check_blocks_fit_attack(params.get("block_size"), roi, None, args.attack_mode)
    transform = case_transform(cfg, entries)
    out = StagedOutput(args.output, "--output", args.overwrite, TRANSFER_RESULTS)

    n = len(models)
    clean_dice: list[list[float | None]] = [[] for _ in range(n)]
    adv_dice: list[list[list[float | None]]] = [[[] for _ in range(n)] for _ in range(n)]
    per_case: list[dict[str, Any]] = []
    start = time.perf_counter()
    try:
        with progress_bar(len(entries) * n, "transfer", unit="attack") as bar:
            for entry in entries:
                case = Case.from_transforms(transform, entry, len(names), (cfg.a_min, cfg.a_max))
                for roi in rois:
                    check_blocks_fit_attack(params.get("block_size"), roi, case.images.shape[2:], args.attack_mode)
                images = case.images.to(device)
                labels = None if case.labels is None else case.labels.to(device)
                cleans = [segment(m.model, images, roi, args) for m, roi in zip(models, rois, strict=True)]
                record: dict[str, Any] = {"case": case.name, "clean_dice": {}, "adversarial_dice": {}}
                for t in range(n):
                    value = score_case(images, images, cleans[t], cleans[t], labels, class_names=names,
                                       spacing_mm=case.spacing_mm, preset=args.metrics_preset)["clean"]["dice"]
                    clean_dice[t].append(value)
                    record["clean_dice"][model_names[t]] = value
                for s in range(n):
                    targets = cleans[s] if labels is None else labels  # no --label: the source's clean prediction
                    result = attack_volume(attackers[s], images, targets, roi=rois[s], mode=args.attack_mode,
                                           tile_batch_size=args.tile_batch_size, overlap=args.infer_overlap,
                                           sw_batch_size=args.sw_batch_size)
                    row = {}
                    for t in range(n):
                        seg_adv = segment(models[t].model, result.adversarial, rois[t], args)
                        value = score_case(images, result.adversarial, cleans[t], seg_adv, labels,
                                           class_names=names, spacing_mm=case.spacing_mm,
                                           preset=args.metrics_preset)["adversarial"]["dice"]
                        adv_dice[s][t].append(value)
                        row[model_names[t]] = value
                    record["adversarial_dice"][model_names[s]] = row
                    bar.update(message=f"{case.name} on {model_names[s]}")
                per_case.append(record)
        clean = np.array([_mean(v) if _mean(v) is not None else np.nan for v in clean_dice], dtype=float)
        dice = np.array([[_mean(adv_dice[s][t]) if _mean(adv_dice[s][t]) is not None else np.nan
                          for t in range(n)] for s in range(n)], dtype=float)
        drop = clean[None, :] - dice
        _write_matrix(out.path("transfer_matrix.csv"), model_names, clean, dice, drop)
        title = f"{name} transfer, {len(entries)} case(s), {args.metrics_preset} Dice"
        write_heatmap(out.path("transfer_heatmap.png"), model_names, model_names, dice, drop, title)
        from SpectrumAttackLib.report.jsonable import dump_json

        dump_json(out.path("transfer.json"), {
            "models": model_names, "attack": name, "params": params, "metrics_preset": args.metrics_preset,
            **precision.as_record(),
            "clean_dice": dict(zip(model_names, clean.tolist(), strict=True)),
            "adversarial_dice": {src: dict(zip(model_names, row, strict=True))
                                 for src, row in zip(model_names, dice.tolist(), strict=True)},
            "dice_drop": {src: dict(zip(model_names, row, strict=True))
                          for src, row in zip(model_names, drop.tolist(), strict=True)},
            "cases": per_case,
        })
        write_manifest(out.staging, command="transfer", arguments=vars(args), seed=args.seed,
                       extra={"data_config": asdict(cfg), "rois": [list(r) for r in rois],
                              "attack": attackers[0].config, "seconds": time.perf_counter() - start,
                              **precision.as_record()})
        folder = out.commit()
    except BaseException:
        out.discard()
        raise
    _print_matrix(model_names, clean, dice, drop)
    print(f"transfer matrix written to {folder}")
    return 0


def _cell(value: float) -> str:
    return f"{value:.4f}" if np.isfinite(value) else ""


def _write_matrix(path: Path, labels: list[str], clean: np.ndarray, dice: np.ndarray, drop: np.ndarray) -> None:
    header = ["source"] + [f"dice[{t}]" for t in labels] + [f"dice_drop[{t}]" for t in labels]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(["clean", *(_cell(v) for v in clean), *([""] * len(labels))])
        for s, label in enumerate(labels):
            writer.writerow([label, *(_cell(v) for v in dice[s]), *(_cell(v) for v in drop[s])])


def _print_matrix(labels: list[str], clean: np.ndarray, dice: np.ndarray, drop: np.ndarray) -> None:
    corner = "source \\ target"
    width = max(len(label) for label in [*labels, corner])
    print(f"{corner:{width}}  " + "  ".join(f"{t:>{max(len(t), 14)}}" for t in labels))
    print(f"{'clean':{width}}  " + "  ".join(f"{_cell(c):>{max(len(t), 14)}}" for c, t in zip(clean, labels,
                                                                                            strict=True)))
    for s, label in enumerate(labels):
        cells = [f"{_cell(dice[s, t]) + ' (-' + _cell(drop[s, t]) + ')':>{max(len(labels[t]), 14)}}"
                 for t in range(len(labels))]
        print(f"{label:{width}}  " + "  ".join(cells))
