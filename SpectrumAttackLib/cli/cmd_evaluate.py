"""``spectrum-attack evaluate``: the seed's ``inference_on_saved_adv_samples.py`` with the same flags.

Finds the adversarial images written by ``spectrum-attack attack``: in ``<adv_images_dir>/<attack sub-folder>/``,
the sub-folder named from the attack flags exactly as ``attack`` names it, or directly in ``--adv_images_dir``
with ``--no_sub_dir_adv_images``. Each case of the split (validation, or training with ``--gen_train_adv_mode``),
is checked and preprocessed as in ``attack`` and matched by file name (``img0001`` → ``img0001_adv.nii.gz``);
the model segments the clean and the saved adversarial image, and both are scored against the labels. The seed's
own uint8 files (``x·255``) are recognised by their integer type and divided by 255.

With ``--image`` (and ``--label``) the saved file is what ``attack --image`` wrote: the adversarial volume on the
image's own grid in its units. Both volumes are preprocessed the same way and scored
(:func:`SpectrumAttackLib.cli.input_grid.evaluate_in_input_grid`), which reproduces the attack's metrics.

With ``--output``, ``metrics.csv``, ``metrics.json`` and ``manifest.json`` are written there; the summary is
always printed.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from SpectrumAttackLib.cli.adv_paths import ADV_SUFFIX, adv_image_name, resolve_adv_dir
from SpectrumAttackLib.cli.args import (
    ATTACK_FLAGS,
    CASE_FLAGS,
    DATA_FLAGS,
    MODEL_FLAGS,
    add_seed_arguments,
    check_choices,
    warn_ignored_flags,
)
from SpectrumAttackLib.cli.cases import load_split
from SpectrumAttackLib.cli.converters import attack_params_from_args, data_config_from_args, model_from_args
from SpectrumAttackLib.cli.input_grid import evaluate_in_input_grid
from SpectrumAttackLib.pipeline.case import Case, case_name, case_transform, class_table
from SpectrumAttackLib.pipeline.scoring import format_case_line, format_summary, score_case, segment
from SpectrumAttackLib.pipeline.staging import EVALUATE_RESULTS, StagedOutput

__all__ = ["USED_FLAGS", "add_parser", "find_adv_dir", "read_adversarial", "run"]

#: flags this subcommand reads; any other flag given is reported as having no effect.
USED_FLAGS = {
    *ATTACK_FLAGS, *DATA_FLAGS, *MODEL_FLAGS, *CASE_FLAGS, "attack_name",
    "infer_overlap", "sw_batch_size", "metrics_preset",
    "adv_images_dir", "no_sub_dir_adv_images", "gen_val_adv_mode", "gen_train_adv_mode", "overwrite", "precision",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand (every seed flag, plus ``--output``)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on saved adversarial images (inference_on_saved_adv_samples.py)",
        description="Segment the adversarial images saved by 'spectrum-attack attack' and their clean "
        "counterparts and score both against the labels. The attack flags select the sub-folder of "
        "--adv_images_dir, as in the reference.",
    )
    add_seed_arguments(parser)
    parser.add_argument("--output", default=None,
                        help="folder for metrics.csv, metrics.json and manifest.json (default: print only)")


def find_adv_dir(args: argparse.Namespace) -> Path:
    """The folder holding the adversarial images for these flags.

    Raises:
        ValueError: ``--adv_images_dir`` not given; no ``--attack_name`` to name the sub-folder.
        FileNotFoundError: the folder does not exist (the message lists the sub-folders that do).
    """
    if not args.adv_images_dir:
        raise ValueError("--adv_images_dir must be the folder of saved adversarial images, got ''.")
    root = Path(args.adv_images_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--adv_images_dir must be an existing folder, got {str(root)!r} (not found).")
    if args.no_sub_dir_adv_images:
        if args.attack_name is not None:
            attack_params_from_args(args)  # validates the attack flags and names those without effect
        return root
    if args.attack_name is None:
        raise ValueError("--attack_name must be given to find the attack's sub-folder of --adv_images_dir "
                         "(or give --no_sub_dir_adv_images), got None.")
    name, params = attack_params_from_args(args)
    folder = resolve_adv_dir(root, name, params, False)
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise FileNotFoundError(
            f"--adv_images_dir must hold the sub-folder {folder.name!r} named after the attack flags, got "
            f"{str(root)!r} with {found or 'no sub-folders'} (same attack flags as the attack run, or "
            "--no_sub_dir_adv_images)."
        )
    return folder


def read_adversarial(path: Path, case: Case) -> torch.Tensor:
    """The saved adversarial image of ``case`` as ``[1, 1, H, W, D]`` float32 in [0, 1].

    Raises:
        ValueError: unreadable file, or a shape other than the case's preprocessed shape.
    """
    from SpectrumAttackLib.io.volumes import read_volume

    volume = read_volume(path)
    array = np.asarray(volume.array)
    if np.issubdtype(array.dtype, np.integer):  # the seed's uint8 files hold x·255
        array = array.astype(np.float32) / 255.0
    shape = tuple(case.images.shape[2:])
    if array.shape != shape:
        raise ValueError(
            f"--adv_images_dir file {path.name} must have the preprocessed shape of case {case.name} {list(shape)}, "
            f"got {list(array.shape)} (use the data flags of the attack run: spacing, intensity window, dataset)."
        )
    if not np.allclose(volume.affine, case.affine, atol=1e-3):
        warnings.warn(f"{path.name}: its IJK→RAS matrix differs from the preprocessed case's; it was probably made "
                      "with other preprocessing flags.", UserWarning, stacklevel=2)
    return torch.from_numpy(np.clip(array, 0.0, 1.0).astype(np.float32))[None, None]


def run(args: argparse.Namespace) -> int:
    """Score every case that has a saved adversarial image. Returns 0."""
    from SpectrumAttackLib.metrics.aggregate import MetricsTable
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.runtime import resolve_device

    check_choices(args)
    warn_ignored_flags(args, USED_FLAGS, "evaluate")
    folder = find_adv_dir(args)
    entries = load_split(args)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device, name="--precision")
    loaded = model_from_args(args, device, nnunet_allowed=bool(args.image))
    cfg = None if args.image else data_config_from_args(args, loaded.entry.preprocessing)
    names, _ = class_table(loaded.entry.class_names, [c.rgb for c in loaded.entry.classes])
    transform = None if args.image else case_transform(cfg, entries)
    matched = [e for e in entries if (folder / adv_image_name(case_name(e["image"]))).is_file()]
    if not matched:
        raise FileNotFoundError(
            f"--adv_images_dir must hold <case>{ADV_SUFFIX} files for the cases of --json_list, got none in "
            f"{str(folder)!r} (looked for e.g. {adv_image_name(case_name(entries[0]['image']))})."
        )
    missing = [case_name(e["image"]) for e in entries if e not in matched]
    if missing:
        warnings.warn(f"no adversarial image for {len(missing)} case(s) ({', '.join(missing)}); they are skipped.",
                      UserWarning, stacklevel=2)
    out = StagedOutput(args.output, "--output", args.overwrite, EVALUATE_RESULTS) if args.output else None
    table = MetricsTable()
    start = time.perf_counter()
    try:
        for entry in matched:
            if args.image:
                case_id, metrics = evaluate_in_input_grid(args, loaded, entry, folder)
                table.add(case_id, metrics)
                print(format_case_line(case_id, metrics), flush=True)
                continue
            case = Case.from_transforms(transform, entry, len(names), (cfg.a_min, cfg.a_max))
            adversarial = read_adversarial(folder / adv_image_name(case.name), case).to(device)
            images = case.images.to(device)
            seg_clean = segment(loaded.model, images, cfg.roi, args)
            seg_adv = segment(loaded.model, adversarial, cfg.roi, args)
            metrics = score_case(images, adversarial, seg_clean, seg_adv, case.labels, class_names=names,
                                 spacing_mm=case.spacing_mm, preset=args.metrics_preset)
            metrics.update(precision.as_record())
            table.add(case.name, metrics)
            print(format_case_line(case.name, metrics), flush=True)
        print(format_summary(table.aggregate(), f"mean over {len(table)} case(s) from {folder}, "
                                                f"{args.metrics_preset} metrics"))
        if out is None:
            return 0
        table.to_csv(out.path("metrics.csv"))
        table.to_json(out.path("metrics.json"))
        write_manifest(out.staging, command="evaluate", arguments=vars(args), seed=args.seed,
                       extra={"adv_images": str(folder), "cases": table.case_ids, "skipped": missing,
                              "seconds": time.perf_counter() - start, **precision.as_record()})
        written = out.commit()
    except BaseException:
        if out is not None:
            out.discard()
        raise
    print(f"metrics written to {written}")
    return 0
