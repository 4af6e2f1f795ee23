"""``spectrum-attack attack``: the seed's ``generate_adv_samples.py`` with the same flags.

For every case of the split (validation, or training with ``--gen_train_adv_mode``): check the files
(:mod:`SpectrumAttackLib.pipeline.validate`), preprocess with the seed's evaluation pipeline
(:meth:`SpectrumAttackLib.pipeline.case.Case.from_transforms`), predict with sliding-window inference, attack the
whole volume (the reference's tiles, batched, or the evaluation's sliding windows with ``--attack_mode
sliding-window``), predict again, and score. Unless ``--debugging``, write into
``<save_adv_images_dir>/<attack sub-folder>/`` (directly into ``--save_adv_images_dir`` with
``--no_sub_dir_adv_images``), all in the preprocessed (model) grid with its IJK→RAS matrix, as the seed did:

- ``<case>_adv.nii.gz`` — the adversarial image, float32 in [0, 1] (not the seed's truncated uint8, §13 item 13);
- ``<case>_perturbation.nii.gz`` — adversarial minus clean, float32;
- ``<case>_pred_clean.nii.gz``, ``<case>_pred_adversarial.nii.gz`` — predictions, uint8;
- ``<case>_report.png`` — slices, perturbation, spectrum and per-organ Dice;
- ``metrics.csv`` / ``metrics.json`` — per case and the mean; ``manifest.json`` — flags, versions, seed, and the
  precision of the model passes (``--precision`` and what it resolved to, also in ``metrics.json``).

One image (``--image``, NIfTI or NRRD, with an optional ``--label``; without labels the clean prediction is the
reference) and nnU-Net v2 trained-model folders (``--model``, with ``--folds`` / ``--checkpoint`` /
``--mirroring``) are attacked in the case's own grid instead, and the same file names hold the adversarial volume,
the perturbation and both segmentations on the input's grid in its units (HU for CT), as the Slicer CLI module
writes them; ``--save_model_grid`` adds the model-grid files (:mod:`SpectrumAttackLib.cli.input_grid`).

Under ``torchrun`` (or the seed's ``--distributed`` flags) rank ``r`` of ``n`` attacks cases ``r, r + n, ...`` and
writes their files into the one staging folder made by rank 0 (on a filesystem all nodes share); rank 0 gathers
the metric rows, writes the merged metrics and the manifest and moves the folder into place. Every case is
attacked with the same ``--seed`` whichever rank takes it, so the results equal a single-process run's.

Example (the seed README's command with the program name changed)::

    spectrum-attack attack --model_name unet-r --feature_size=16 --infer_overlap=0.5 --dataset btcv \\
        --data_dir=DATA --json_list=dataset_synapse_18_12.json --use_pretrained --pretrained_path=MODEL.pt \\
        --gen_val_adv_mode --save_adv_images_dir=OUT \\
        --attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from SpectrumAttackLib.cli.adv_paths import adv_image_name, resolve_adv_dir
from SpectrumAttackLib.cli.args import (
    ATTACK_FLAGS,
    CASE_FLAGS,
    DATA_FLAGS,
    MODEL_FLAGS,
    add_seed_arguments,
    warn_ignored_flags,
)
from SpectrumAttackLib.cli.cases import input_files, load_split
from SpectrumAttackLib.cli.converters import attack_params_from_args, data_config_from_args, model_from_args
from SpectrumAttackLib.cli.input_grid import attack_in_input_grid
from SpectrumAttackLib.models.loading import weights_sha256
from SpectrumAttackLib.pipeline.case import Case, case_transform, class_table
from SpectrumAttackLib.pipeline.scoring import format_case_line, format_summary, score_case, segment
from SpectrumAttackLib.pipeline.staging import ATTACK_RESULTS, StagedOutput

if TYPE_CHECKING:
    from SpectrumAttackLib.distributed import DistContext
    from SpectrumAttackLib.precision import Precision

__all__ = ["USED_FLAGS", "add_parser", "run"]

logger = logging.getLogger(__name__)

#: flags this subcommand reads; any other flag given is reported as having no effect.
USED_FLAGS = {
    *ATTACK_FLAGS, *DATA_FLAGS, *MODEL_FLAGS, *CASE_FLAGS, "attack_name",
    "infer_overlap", "sw_batch_size", "attack_mode",
    "tile_batch_size", "overwrite", "metrics_preset", "gen_val_adv_mode", "gen_train_adv_mode",
    "save_adv_images_dir", "no_sub_dir_adv_images", "debugging", "distributed", "world_size", "rank", "dist_url",
    "dist_backend", "precision", "save_model_grid", "target_ssim",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``attack`` subcommand (every seed flag, plus ours)."""
    parser = subparsers.add_parser(
        "attack",
        help="attack the cases of a split and save adversarial images (generate_adv_samples.py)",
        description="Generate adversarial versions of the validation (or training) cases of --json_list with "
        "--attack_name, score them and save them in the model grid. Takes every flag of the reference scripts; "
        "flags with no effect are named in a warning.",
    )
    add_seed_arguments(parser)


def _write_case(out: StagedOutput, case: Case, adv: Any, seg_clean: Any, seg_adv: Any, metrics: dict,
                names: list[str], colours: list, block_size: Any, title: str) -> None:
    from SpectrumAttackLib.io.volumes import write_volume
    from SpectrumAttackLib.report.figure import write_case_report

    clean = case.images[0, 0].numpy()
    adversarial = adv[0, 0].detach().cpu().numpy().astype(np.float32)
    label_dtype = np.uint8 if len(names) <= 256 else np.int16
    write_volume(out.path(adv_image_name(case.name)), adversarial, case.affine, dtype=np.float32)
    write_volume(out.path(f"{case.name}_perturbation.nii.gz"), adversarial - clean, case.affine, dtype=np.float32)
    write_volume(out.path(f"{case.name}_pred_clean.nii.gz"), seg_clean[0, 0].cpu().numpy(), case.affine,
                 dtype=label_dtype)
    write_volume(out.path(f"{case.name}_pred_adversarial.nii.gz"), seg_adv[0, 0].cpu().numpy(), case.affine,
                 dtype=label_dtype)
    blocks = tuple(block_size) if block_size is not None and len(block_size) == 3 else None
    if blocks is not None and any(b > n for b, n in zip(blocks, clean.shape, strict=True)):
        blocks = None
    write_case_report(out.path(f"{case.name}_report.png"), clean, adversarial, seg_clean, seg_adv,
                      class_names=names, class_colors=colours, metrics=metrics, block_size=blocks,
                      title=title, spacing_mm=case.spacing_mm)


def run(args: argparse.Namespace) -> int:
    """Attack every case; write the results unless ``--debugging``. Returns 0.

    Runs in every process of a distributed run (torchrun or ``--distributed``); see the module docstring.
    """
    from SpectrumAttackLib.distributed import launch

    return launch(_attack, args)


def _attack(args: argparse.Namespace, ctx: DistContext) -> int:
    """Attack this process's share of the cases; rank 0 writes the merged results."""
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.attacks.ssim_target import budget_knob
    from SpectrumAttackLib.checks import check_range
    from SpectrumAttackLib.distributed import gather_results, on_main, shard_indices
    from SpectrumAttackLib.inference.ssim_budget import attack_volume_at_ssim
    from SpectrumAttackLib.inference.tiles import attack_volume
    from SpectrumAttackLib.metrics.aggregate import MetricsTable
    from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
    from SpectrumAttackLib.pipeline.validate import check_blocks_fit_attack
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.report.progress import progress_bar

    name, params = attack_params_from_args(args)
    warn_ignored_flags(args, USED_FLAGS, "attack")
    if not args.debugging and not args.save_adv_images_dir:
        raise ValueError("--save_adv_images_dir must be a folder for the results (or give --debugging), got None.")
    entries = load_split(args)
    device = ctx.device
    precision = resolve_precision(args.precision, device, name="--precision")
    if args.target_ssim:
        check_range("--target_ssim", args.target_ssim, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        budget_knob(name)  # an attack without a strength knob is refused before any work
    loaded = model_from_args(args, device, nnunet_allowed=True)
    if args.image or isinstance(loaded.entry.preprocessing, NnUNetPreprocessing):  # in the cases' own grids
        if args.target_ssim and isinstance(loaded.entry.preprocessing, NnUNetPreprocessing):
            raise ValueError(f"--target_ssim must be 0 with an nnU-Net model folder (its attacks run in the input "
                             f"grid, where the SSIM search is not wired yet), got {args.target_ssim!r}.")
        return attack_in_input_grid(args, loaded, entries, name, params, ctx.world_size)
    if args.save_model_grid:
        warnings.warn("flag --save_model_grid has no effect with a split: its files are in the model grid already.",
                      UserWarning, stacklevel=2)
    cfg = data_config_from_args(args, loaded.entry.preprocessing)
    names, colours = class_table(loaded.entry.class_names, [c.rgb for c in loaded.entry.classes])
    attacker = attacks.create(name, loaded.model, precision=args.precision, **params)
    check_blocks_fit_attack(params.get("block_size"), cfg.roi, None, args.attack_mode)
    transform = case_transform(cfg, entries)
    out = None
    if not args.debugging:
        folder = resolve_adv_dir(args.save_adv_images_dir, name, params, args.no_sub_dir_adv_images)
        # One staging folder for all ranks: rank 0 checks the target and makes it, the others write into it.
        out = on_main(lambda: StagedOutput(folder, "--save_adv_images_dir", args.overwrite, ATTACK_RESULTS,
                                           inputs=input_files(args, entries)), ctx)

    def attack_share() -> list[tuple[int, str, dict]]:
        rows = []
        for index in shard_indices(len(entries), ctx.rank, ctx.world_size):
            case = Case.from_transforms(transform, entries[index], len(names), (cfg.a_min, cfg.a_max))
            check_blocks_fit_attack(params.get("block_size"), cfg.roi, case.images.shape[2:], args.attack_mode)
            images = case.images.to(device)
            seg_clean = segment(loaded.model, images, cfg.roi, args)
            labels = seg_clean if case.labels is None else case.labels.to(device)  # no --label: the clean prediction
            with progress_bar(1, f"[{index + 1}/{len(entries)}] {case.name} {name}", unit="step") as bar:
                volume = {"roi": cfg.roi, "mode": args.attack_mode, "tile_batch_size": args.tile_batch_size,
                          "overlap": args.infer_overlap, "sw_batch_size": args.sw_batch_size, "progress": bar.report}
                if args.target_ssim:
                    result, level = attack_volume_at_ssim(name, loaded.model, images, labels, [args.target_ssim],
                                                          params={**params, "precision": args.precision},
                                                          **volume)[0]
                else:
                    result = attack_volume(attacker, images, labels, **volume)
            seg_adv = segment(loaded.model, result.adversarial, cfg.roi, args)
            metrics = score_case(images, result.adversarial, seg_clean, seg_adv, case.labels, class_names=names,
                                 spacing_mm=case.spacing_mm, preset=args.metrics_preset)
            metrics["seconds"] = result.seconds
            metrics["tiles"] = result.tiles
            if args.target_ssim:
                metrics["target_ssim"] = {**level.as_record(), "budget_name": budget_knob(name)}
            metrics.update(precision.as_record())
            print(format_case_line(case.name, metrics), flush=True)
            if out is not None:
                _write_case(out, case, result.adversarial, seg_clean, seg_adv, metrics, names, colours,
                            params.get("block_size"), f"{case.name}: {name} ({args.attack_mode})")
            rows.append((index, case.name, metrics))
        return rows

    table = MetricsTable()
    start = time.perf_counter()
    try:
        shares = gather_results(attack_share, ctx)  # every rank's files are written once this returns
        if not ctx.is_main:
            return 0
        for _, case_name, metrics in sorted((row for share in shares for row in share), key=lambda row: row[0]):
            table.add(case_name, metrics)
        mean = table.aggregate()
        print(format_summary(mean, f"mean over {len(table)} case(s), {args.metrics_preset} metrics"))
        if out is None:
            return 0
        table.to_csv(out.path("metrics.csv"))
        table.to_json(out.path("metrics.json"))
        write_manifest(
            out.staging, command="attack", arguments=vars(args), seed=args.seed, weights_sha256=weights_sha256(loaded),
            extra=_manifest_extra(attacker, cfg, loaded, entries, args, time.perf_counter() - start, ctx.world_size,
                                  precision),
        )
        folder = out.commit()
    except BaseException:
        if out is not None and ctx.is_main:
            out.discard()
        raise
    print(f"results written to {folder}")
    return 0


def _manifest_extra(attacker: Any, cfg: Any, loaded: Any, entries: list, args: argparse.Namespace,
                    seconds: float, processes: int, precision: Precision) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "attack": attacker.config,
        "attack_mode": args.attack_mode,
        "tile_batch_size": args.tile_batch_size,
        "data_config": asdict(cfg),
        "model": {"name": loaded.entry.name, "architecture": loaded.entry.architecture,
                  "num_classes": loaded.entry.num_classes},
        "cases": [str(e["image"]) for e in entries],
        "grid": "model grid: RAS, resampled to data_config.spacing, intensity window, foreground crop",
        "seconds": seconds,
        "processes": processes,
        **precision.as_record(),
    }
