"""``spectrum-attack demo``: SA² on one sample CT with the bundled model, in a few minutes on a laptop CPU.

Defaults: case ``img0001`` of the sample data (``spectrum-attack sample-data``; the abdomen CT the demo model
``unet-btcv-3mm`` was trained on, so its clean Dice is a training-set figure), the SA² settings of the seed
README's ``generate_adv_samples.py`` example (``--steps 10 --rho 0.4 --block_size 16 16 16 --lambda_dice 0.2
--use_ssim_loss --lambda_ssim 0.75``, seed-algorithms §2.8) and the ``clinical`` metrics (foreground Dice per organ,
HD95 in mm). The seed README's other SA² line (``--rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01
--use_ssim_loss``) is too weak on this model: with λ_dice = 0.01 against λ_ssim = 1 the SSIM term decides the sign of
almost every gradient entry, and mean Dice only drops from 0.485 to 0.450. Every flag of ``attack`` can override
them; ``--no_ssim_loss`` turns the SSIM term off. The volume is attacked in its own grid through
:func:`~SpectrumAttackLib.workflows.single.attack_single_volume` (resampled to the model's grid and back).

Writes into ``--output`` (default ``demo-output``), all in the input CT's grid with its affine:
``adversarial.nii.gz`` (float32, HU), ``perturbation.nii.gz`` (float32, HU), ``segmentation_clean.nii.gz`` and
``segmentation_adversarial.nii.gz`` (uint8), ``report.png``, ``metrics.json`` and ``manifest.json``; then prints
a table of clean vs adversarial Dice per organ, HD95, SSIM, PSNR, fooling rate and seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackLib.cli.adv_paths import sub_dir_name
from SpectrumAttackLib.cli.args import ATTACK_FLAGS, MODEL_FLAGS, PREPROCESSING_FLAGS, add_flags
from SpectrumAttackLib.cli.converters import attack_params_from_args, model_from_args
from SpectrumAttackLib.cli.input_grid import input_grid_model, write_model_grid_report
from SpectrumAttackLib.pipeline.case import case_name
from SpectrumAttackLib.pipeline.scoring import format_summary
from SpectrumAttackLib.pipeline.staging import DEMO_RESULTS, StagedOutput

__all__ = ["DEMO_DEFAULTS", "USED_FLAGS", "add_parser", "find_case", "run"]

#: the seed README's SA² example settings (seed-algorithms §2.8), the demo model and the clinical metrics.
DEMO_DEFAULTS: dict[str, Any] = {
    "attack_name": "saa",
    "rho": 0.4,
    "steps": 10,
    "block_size": [16, 16, 16],
    "lambda_dice": 0.2,
    "lambda_ssim": 0.75,
    "use_ssim_loss": True,
    "model": "unet-btcv-3mm",
    "metrics_preset": "clinical",
}
DEMO_CASE = "img0001"

#: the only flags of the tables this subcommand lists and reads.
USED_FLAGS = {
    *ATTACK_FLAGS, *MODEL_FLAGS, *PREPROCESSING_FLAGS, "attack_name", "infer_overlap", "attack_mode",
    "tile_batch_size", "overwrite", "metrics_preset", "precision",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``demo`` subcommand: the attack, model and preprocessing flags with the demo's defaults, plus
    ``--output``/``--case`` (``--help`` lists nothing else)."""
    parser = subparsers.add_parser(
        "demo",
        help="SA² on a sample CT with the bundled model; writes demo-output/ and prints a summary",
        description="Attack one CT (default: img0001 of the sample data) with SA² (the seed README's settings) "
        "using the bundled demo model, write the adversarial volume, perturbation, both segmentations, a report "
        "figure, metrics and a manifest, and print a summary. Attack, model and preprocessing flags override "
        "the defaults.",
    )
    parser.add_argument("--output", default="demo-output", help="result folder (default: demo-output)")
    parser.add_argument("--case", default=DEMO_CASE,
                        help=f"case name in the split file (default: {DEMO_CASE}; the sample data's cases are "
                        "img0001 (training), img0002 and img0003 (validation))")
    parser.add_argument("--no_ssim_loss", dest="use_ssim_loss", action="store_false",
                        help="leave the SSIM term out of the attack objective (on by default in the demo)")
    add_flags(parser, USED_FLAGS)
    parser.set_defaults(**DEMO_DEFAULTS)


def find_case(args: argparse.Namespace) -> dict[str, Any]:
    """The split entry of ``--case``: from ``--data_dir``/``--json_list``, else from the sample data.

    Raises:
        ValueError: ``--data_dir`` without ``--json_list``, or no case of that name (the message lists them).
        RuntimeError: the sample data cannot be fetched.
    """
    from SpectrumAttackLib.data.datalist import load_datalist

    if args.data_dir in (None, "", "None"):
        from SpectrumAttackLib.data.sample_data import SAMPLE_SPLIT, ensure_sample_data

        data_dir, json_list = ensure_sample_data(), SAMPLE_SPLIT
    else:
        data_dir, json_list = args.data_dir, args.json_list
    cases = []
    for key in ("training", "validation"):
        try:
            cases += load_datalist(data_dir, json_list, key)
        except ValueError as exc:
            if not str(exc).startswith("key must"):
                raise
    for case in cases:
        if case_name(case["image"]) == args.case:
            return case
    found = ", ".join(sorted({case_name(c["image"]) for c in cases})) or "none"
    raise ValueError(f"--case must name a case of the split file, got {args.case!r} (cases: {found}).")


def run(args: argparse.Namespace) -> int:
    """Run the demo; write the results and print the summary. Returns 0."""
    from SpectrumAttackLib.io.volumes import read_volume, write_volume
    from SpectrumAttackLib.pipeline.validate import read_image
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.jsonable import dump_json
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.runtime import resolve_device
    from SpectrumAttackLib.workflows.single import attack_single_volume

    start = time.perf_counter()
    name, params = attack_params_from_args(args, DEMO_DEFAULTS)
    params.pop("seed", None)
    entry = find_case(args)
    image_name, labels_name = f"--case {args.case} image", f"--case {args.case} label"
    image = read_image(entry["image"], image_name)
    labels = read_volume(entry["label"], name=labels_name).array if entry.get("label") else None
    device = resolve_device(args.device)
    resolve_precision(args.precision, device, name="--precision")  # refuses e.g. fp16 on a CPU before any work
    loaded = input_grid_model(args, model_from_args(args, device))
    out = StagedOutput(args.output, "--output", args.overwrite, DEMO_RESULTS,
                       inputs={image_name: entry["image"], labels_name: entry.get("label")})
    try:
        with progress_bar(1, f"demo {args.case} {name}") as bar:
            result = attack_single_volume(
                image, model=loaded, attack=name, params=params, reference_labels=labels, seed=args.seed,
                precision=args.precision,
                attack_mode=args.attack_mode, overlap=args.infer_overlap, tile_batch_size=args.tile_batch_size,
                metrics_preset=args.metrics_preset, progress=bar.report, image_name=image_name,
                labels_name=labels_name,
            )
        label_dtype = np.uint8 if loaded.entry.num_classes <= 256 else np.int16
        write_volume(out.path("adversarial.nii.gz"), result.adversarial, image.affine, dtype=np.float32)
        write_volume(out.path("perturbation.nii.gz"), result.perturbation, image.affine, dtype=np.float32)
        write_volume(out.path("segmentation_clean.nii.gz"), result.seg_clean, image.affine, dtype=label_dtype)
        write_volume(out.path("segmentation_adversarial.nii.gz"), result.seg_adv, image.affine, dtype=label_dtype)
        write_model_grid_report(out.path("report.png"), result, params.get("block_size"),
                                f"{args.case}: {name} on {loaded.entry.name}")
        metrics = dict(result.metrics)
        metrics["attack_seconds"] = metrics.pop("seconds", None)
        metrics["seconds"] = time.perf_counter() - start
        metrics.update(case=args.case, image=str(entry["image"]), model=loaded.entry.name, attack=name,
                       attack_config=result.attack_config)
        dump_json(out.path("metrics.json"), metrics)
        write_manifest(out.staging, command="demo", arguments=vars(args), seed=args.seed,
                       extra={"attack_config": result.attack_config, "seconds": metrics["seconds"]})
        folder = out.commit()
    except BaseException:
        out.discard()
        raise
    print(format_summary(metrics, f"demo: {args.case} ({Path(entry['image']).name}), model {loaded.entry.name}, "
                                  f"{sub_dir_name(name, params)}, {args.metrics_preset} metrics"))
    print(f"results written to {folder}")
    return 0
