"""``attack`` and ``evaluate`` in each case's own grid and units: ``--image``, and nnU-Net models on a split.

A single image (``--image``, with an optional ``--label``) is attacked the way the Slicer CLI module, ``demo`` and
the Python API attack it: :func:`~SpectrumAttackLib.workflows.single.attack_single_volume` maps it to the model
grid (:meth:`SpectrumAttackLib.pipeline.case.Case.from_volume`), attacks there, brings the perturbation back in the
input's units and predicts again on the saved volume. An nnU-Net v2 trained-model folder is run this way for the
cases of a split too (nnU-Net's own crop, resampling, normalisation and sliding window). Written into the attack
folder, all on the input's grid with its affine, with the seed's file names:

- ``<case>_adv.nii.gz`` — the adversarial image in the input's units (HU for CT), float32;
- ``<case>_perturbation.nii.gz`` — adversarial minus input, same units;
- ``<case>_pred_clean.nii.gz``, ``<case>_pred_adversarial.nii.gz`` — the model's segmentations (uint8);
- ``<case>_report.png`` — slices, perturbation, spectrum and per-organ Dice (in the model grid);
- ``metrics.csv`` / ``metrics.json`` (metrics in the model grid, as for the dataset cases) and ``manifest.json``.

With ``--save_model_grid`` the model's view is written beside them: ``<case>_adv_model_grid.nii.gz`` (the saved
adversarial volume preprocessed again, [0, 1]), ``<case>_perturbation_model_grid.nii.gz`` (its difference to the
preprocessed input), ``<case>_pred_clean_model_grid.nii.gz`` and ``<case>_pred_adversarial_model_grid.nii.gz``,
with the model grid's affine. They are off by default because they are a different kind of file (windowed to
[0, 1], resampled, reoriented, cropped): a user who feeds ``_adv`` files to another pipeline must get the attacked
scan, whichever door they used; the model-grid files are for looking at what the model saw.

``evaluate --image`` reads ``<case>_adv.nii.gz`` back on the same grid (in the input's units), preprocesses the
clean and the adversarial image the same way, predicts both and scores them against ``--label`` (else the clean
prediction), which reproduces the attack's metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.cli.adv_paths import adv_image_name, resolve_adv_dir
from SpectrumAttackLib.cli.cases import input_files
from SpectrumAttackLib.pipeline.case import case_name, class_table
from SpectrumAttackLib.pipeline.scoring import format_case_line, format_summary
from SpectrumAttackLib.pipeline.staging import ATTACK_RESULTS, StagedOutput

__all__ = ["attack_in_input_grid", "evaluate_in_input_grid", "input_grid_model", "write_model_grid_report"]


def input_grid_model(args: argparse.Namespace, loaded: Any) -> Any:
    """``loaded`` with the data flags' preprocessing (window, spacing, ROI over the model's own) and named classes.

    nnU-Net models keep their own preprocessing (the seed's data flags do not apply to them).
    """
    from SpectrumAttackLib.cli.converters import data_config_from_args
    from SpectrumAttackLib.models.catalogue import ClassInfo, Preprocessing
    from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing

    own = loaded.entry.preprocessing
    names, colours = class_table(loaded.entry.class_names, [c.rgb for c in loaded.entry.classes])
    classes = tuple(ClassInfo(i, n, tuple(c)) for i, (n, c) in enumerate(zip(names, colours, strict=True)))
    entry = dataclasses.replace(loaded.entry, classes=classes)
    if not isinstance(own, NnUNetPreprocessing):
        cfg = data_config_from_args(args, own)
        entry = dataclasses.replace(entry, preprocessing=Preprocessing(
            orientation=own.orientation, spacing_mm=cfg.spacing, a_min=cfg.a_min, a_max=cfg.a_max, b_min=cfg.b_min,
            b_max=cfg.b_max, roi=cfg.roi))
    return dataclasses.replace(loaded, entry=entry)


def write_model_grid_report(path: Path, result: Any, block_size: Any, title: str) -> None:
    """The case report (:func:`~SpectrumAttackLib.report.figure.write_case_report`) of a single-volume result, drawn
    from its model-grid tensors."""
    from SpectrumAttackLib.report.figure import write_case_report

    grid = result.model_grid
    block = tuple(block_size) if block_size is not None and len(block_size) == 3 and all(
        b <= n for b, n in zip(block_size, grid["clean"].shape[2:], strict=True)) else None
    write_case_report(
        path, grid["clean"][0, 0], grid["adversarial"][0, 0], grid["seg_clean"][0, 0], grid["seg_adv"][0, 0],
        class_names=[c["name"] for c in result.classes], class_colors=[c["rgb"] for c in result.classes],
        metrics=result.metrics, block_size=block, title=title, spacing_mm=grid["spacing_mm"],
    )


def _write_case(out: StagedOutput, case: str, result: Any, affine: np.ndarray, save_model_grid: bool) -> None:
    from SpectrumAttackLib.io.volumes import write_volume

    label_dtype = result.seg_clean.dtype
    write_volume(out.path(adv_image_name(case)), result.adversarial, affine, dtype=np.float32)
    write_volume(out.path(f"{case}_perturbation.nii.gz"), result.perturbation, affine, dtype=np.float32)
    write_volume(out.path(f"{case}_pred_clean.nii.gz"), result.seg_clean, affine, dtype=label_dtype)
    write_volume(out.path(f"{case}_pred_adversarial.nii.gz"), result.seg_adv, affine, dtype=label_dtype)
    if not save_model_grid:
        return
    grid = result.model_grid
    clean, adversarial = grid["clean"][0, 0].numpy(), grid["adversarial"][0, 0].numpy()
    for stem, array, dtype in (("adv", adversarial, np.float32), ("perturbation", adversarial - clean, np.float32),
                               ("pred_clean", grid["seg_clean"][0, 0].numpy(), label_dtype),
                               ("pred_adversarial", grid["seg_adv"][0, 0].numpy(), label_dtype)):
        write_volume(out.path(f"{case}_{stem}_model_grid.nii.gz"), array, grid["affine"], dtype=dtype)


def attack_in_input_grid(args: argparse.Namespace, loaded: Any, entries: list[dict[str, Any]], name: str,
                         params: dict[str, Any], world_size: int) -> int:
    """Attack every case of ``entries`` with ``loaded`` in the cases' own grids; write unless ``--debugging``.

    Raises:
        ValueError: a distributed run (one process only), or a case the workflow refuses (named in the message).
    """
    from SpectrumAttackLib.metrics.aggregate import MetricsTable
    from SpectrumAttackLib.pipeline.validate import read_image
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.workflows.single import attack_single_volume

    if world_size > 1:
        raise ValueError(f"a run in each case's own grid (--image, or an nnU-Net --model) runs in one process, got "
                         f"a distributed run of {world_size}.")
    loaded = input_grid_model(args, loaded)
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
            case = case_name(entry["image"])
            image_param = entry.get("image_param") or f"--data_dir image {Path(entry['image']).name}"
            volume = read_image(entry["image"], image_param)
            with progress_bar(1, f"[{index + 1}/{len(entries)}] {case} {name}", unit="step") as bar:
                result = attack_single_volume(
                    volume, model=loaded, attack=name, params=attack_params, reference_labels=entry.get("label"),
                    seed=args.seed, precision=args.precision, attack_mode=args.attack_mode, overlap=args.infer_overlap,
                    tile_batch_size=args.tile_batch_size, metrics_preset=args.metrics_preset, progress=bar.report,
                    image_name=image_param, target_ssim=args.target_ssim,
                    labels_name=entry.get("label_param") or f"--data_dir label {Path(str(entry.get('label'))).name}",
                )  # fmt: skip
            print(format_case_line(case, result.metrics), flush=True)
            table.add(case, result.metrics)
            if out is not None:
                _write_case(out, case, result, volume.affine, args.save_model_grid)
                write_model_grid_report(out.path(f"{case}_report.png"), result, params.get("block_size"),
                                        f"{case}: {name} ({args.attack_mode}), input grid")
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
                   "grid": "each case's own grid and units (the model's preprocessing for inference)",
                   "model_grid_files": bool(args.save_model_grid),
                   "seconds": time.perf_counter() - start, "processes": 1},
        )  # fmt: skip
        folder = out.commit()
    except BaseException:
        if out is not None:
            out.discard()
        raise
    print(f"results written to {folder}")
    return 0


def evaluate_in_input_grid(args: argparse.Namespace, loaded: Any, entry: dict[str, Any], folder: Path) -> \
        tuple[str, dict[str, Any]]:
    """Score the saved ``<case>_adv.nii.gz`` of ``entry`` (``--image``) in ``folder``: ``(case, metrics)``.

    Raises:
        ValueError: the saved volume is not on the grid of ``--image`` (another shape or affine).
    """
    from SpectrumAttackLib.pipeline.validate import read_image
    from SpectrumAttackLib.workflows.single import prepare_case

    case = case_name(entry["image"])
    prepared = prepare_case(entry["image"], model=input_grid_model(args, loaded),
                            reference_labels=entry.get("label"), overlap=args.infer_overlap,
                            metrics_preset=args.metrics_preset, image_name="--image", labels_name="--label",
                            precision=args.precision)
    path = folder / adv_image_name(case)
    adversarial = read_image(path, f"--adv_images_dir file {path.name}")
    if adversarial.array.shape != prepared.array.shape or not np.allclose(adversarial.affine, prepared.affine,
                                                                          atol=1e-3):
        raise ValueError(f"--adv_images_dir file {path.name} must lie on the grid of --image (shape "
                         f"{list(prepared.array.shape)}, its affine), got shape {list(adversarial.array.shape)} "
                         "(written by `spectrum-attack attack --image` with this image?).")
    adv_case, logits_adv = prepared.predict_adversarial(adversarial.array)
    metrics = prepared.score(adv_case, class_map(logits_adv))
    metrics.update(prepared.precision.as_record())
    return case, metrics
