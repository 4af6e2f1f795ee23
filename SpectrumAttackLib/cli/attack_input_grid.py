"""``spectrum-attack attack`` for models that bring their own preprocessing (nnU-Net v2 trained-model folders).

Each case of the split is read as it is on disk and attacked with
:func:`~SpectrumAttackLib.workflows.single.attack_single_volume`, which runs the model's own preprocessing and
inference (nnU-Net's crop, resampling, normalisation and sliding window). Everything is written in the case's own
grid and units, next to the seed's file names:

- ``<case>_adv.nii.gz`` — the adversarial image in the input's units (HU for CT), float32, the input's affine;
- ``<case>_perturbation.nii.gz`` — adversarial minus input, same units;
- ``<case>_pred_clean.nii.gz``, ``<case>_pred_adversarial.nii.gz`` — the model's segmentations (nnU-Net's export);
- ``metrics.csv`` / ``metrics.json`` (metrics in the model grid, as for the other models) and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from SpectrumAttackLib.cli.adv_paths import adv_image_name, resolve_adv_dir
from SpectrumAttackLib.cli.cases import input_files
from SpectrumAttackLib.pipeline.case import case_name
from SpectrumAttackLib.pipeline.scoring import format_case_line, format_summary
from SpectrumAttackLib.pipeline.staging import ATTACK_RESULTS, StagedOutput

__all__ = ["attack_in_input_grid"]


def attack_in_input_grid(args: argparse.Namespace, loaded: Any, entries: list[dict[str, Any]], name: str,
                         params: dict[str, Any], world_size: int) -> int:
    """Attack every case of ``entries`` with ``loaded`` in the cases' own grids; write unless ``--debugging``.

    Raises:
        ValueError: a distributed run (one process only), or a case the workflow refuses (named in the message).
    """
    from SpectrumAttackLib.io.volumes import read_volume, write_volume
    from SpectrumAttackLib.metrics.aggregate import MetricsTable
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.workflows.single import attack_single_volume

    if world_size > 1:
        raise ValueError(f"--model {loaded.entry.name!r} (an nnU-Net model) runs in one process, got a distributed "
                         f"run of {world_size}.")
    out = None
    if not args.debugging:
        folder = resolve_adv_dir(args.save_adv_images_dir, name, params, args.no_sub_dir_adv_images)
        out = StagedOutput(folder, "--save_adv_images_dir", args.overwrite, ATTACK_RESULTS,
                           inputs=input_files(args, entries))
    attack_params = {k: v for k, v in params.items() if k != "seed"}
    table = MetricsTable()
    start = time.perf_counter()
    try:
        for index, entry in enumerate(entries):
            volume = read_volume(entry["image"])
            labels = read_volume(entry["label"]).array if entry.get("label") else None
            case = case_name(entry["image"])
            with progress_bar(1, f"[{index + 1}/{len(entries)}] {case} {name}", unit="step") as bar:
                result = attack_single_volume(
                    volume, model=loaded, attack=name, params=attack_params, reference_labels=labels,
                    seed=args.seed, precision=args.precision, attack_mode=args.attack_mode, overlap=args.infer_overlap,
                    tile_batch_size=args.tile_batch_size, metrics_preset=args.metrics_preset,
                    progress=bar.report,
                )  # fmt: skip
            print(format_case_line(case, result.metrics), flush=True)
            table.add(case, result.metrics)
            if out is not None:
                label_dtype = result.seg_clean.dtype
                write_volume(out.path(adv_image_name(case)), result.adversarial, volume.affine, dtype=np.float32)
                write_volume(out.path(f"{case}_perturbation.nii.gz"), result.perturbation, volume.affine,
                             dtype=np.float32)
                write_volume(out.path(f"{case}_pred_clean.nii.gz"), result.seg_clean, volume.affine,
                             dtype=label_dtype)
                write_volume(out.path(f"{case}_pred_adversarial.nii.gz"), result.seg_adv, volume.affine,
                             dtype=label_dtype)
        print(format_summary(table.aggregate(), f"mean over {len(table)} case(s), {args.metrics_preset} metrics"))
        if out is None:
            return 0
        table.to_csv(out.path("metrics.csv"))
        table.to_json(out.path("metrics.json"))
        write_manifest(
            out.staging, command="attack", arguments=vars(args), seed=args.seed, weights_sha256=None,
            extra={"attack": {"name": name, **attack_params}, "attack_mode": args.attack_mode,
                   "model": {"name": loaded.entry.name, "architecture": loaded.entry.architecture,
                             "num_classes": loaded.entry.num_classes, **loaded.entry.arguments},
                   "cases": [str(e["image"]) for e in entries],
                   "grid": "each case's own grid and units (the model's own preprocessing for inference)",
                   "seconds": time.perf_counter() - start, "processes": 1},
        )  # fmt: skip
        folder = out.commit()
    except BaseException:
        if out is not None:
            out.discard()
        raise
    print(f"results written to {folder}")
    return 0
