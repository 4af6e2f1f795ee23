"""``spectrum-attack harden``: adversarial fine-tuning (VAFT by default) of a model on a few labelled volumes,
written as a new model folder. The command line of :func:`SpectrumAttackLib.workflows.harden.harden`: the same
checks, loop and writer as the Python API and the Slicer module.

Data: ``--training`` a split json or dataset folder (its ``training`` list; its ``validation`` list validates unless
``--validation`` or ``--val_image`` is given), or pairs ``--image CT1 CT2 --label SEG1 SEG2``. Model: ``--model``, a
catalogue name, a checkpoint (with ``--model_name``, ``--out_channels`` and its sizes and preprocessing flags), a
MONAI bundle or an nnU-Net v2 trained-model folder (``--folds K``, one fold). The attack's flags are the rows of
the parameter table (``--steps``, ``--eps``, ``--block_size``...), engine units. The result, in ``--output``: a MONAI
bundle (or an nnU-Net folder) that ``--model`` of every other subcommand takes as it is.

Example::

    spectrum-attack harden --model unet-btcv-3mm --training $(spectrum-attack sample-data --print-path) \\
        --attack_name vafa-3d --steps 5 --iterations 40 --output unet-btcv-3mm-vaft
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

from SpectrumAttackLib.attacks.parameters import ATTACK_PARAMETERS, Parameter, parameters_of
from SpectrumAttackLib.precision import PRECISIONS

__all__ = ["CHECKPOINT_FLAGS", "add_parser", "run"]

#: flags that describe a bare checkpoint (other models describe themselves) → ``load_model`` keyword.
CHECKPOINT_FLAGS = {"model_name": "architecture", "out_channels": "num_classes", "feature_size": "feature_size",
                    "unet_channels": "channels", "unet_strides": "strides", "num_res_units": "num_res_units"}
_PREPROCESSING_FLAGS = ("roi_x", "roi_y", "roi_z", "space_x", "space_y", "space_z", "a_min", "a_max")
#: attack rows offered here: every attack parameter but ``targeted`` (training has no target maps).
_ATTACK_ROWS = tuple(p for p in ATTACK_PARAMETERS if p.engine != "targeted")


def _add_parameter(group: argparse._ArgumentGroup, row: Parameter) -> None:
    text = (f"{row.help} Default {row.default!r}" + (f" ({row.unit})." if row.unit else ".")).replace("%", "%%")
    if row.kind == "bool":
        group.add_argument(row.flag, action="store_true", default=None, help=text)
    elif row.kind == "block":
        group.add_argument(row.flag, type=int, nargs="+", default=None, metavar="N", help=text)
    else:
        group.add_argument(row.flag, default=None, metavar=row.kind.upper(), help=text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``harden`` subcommand (only the flags it reads)."""
    from SpectrumAttackLib.workflows.harden import MODES

    parser = subparsers.add_parser(
        "harden",
        help="adversarial fine-tuning (VAFT) of a model on labelled volumes, written as a new model folder",
        description="Fine-tune a model to resist adversarial attacks: VAFT (clean + adversarial DiceCE + frequency "
        "regulariser), adversarial or normal fine-tuning on random ROI crops, adversarial examples made per "
        "iteration by --attack_name. Writes a new MONAI bundle (or nnU-Net trained-model folder) to --output.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--training", default=None, help="split json or dataset folder (its 'training' list)")
    data.add_argument("--image", nargs="+", default=None, metavar="FILE", help="training images (NIfTI/NRRD)")
    data.add_argument("--label", nargs="+", default=None, metavar="FILE", help="their label maps, in the same order")
    data.add_argument("--validation", default=None, help="split json or dataset folder (its 'validation' list)")
    data.add_argument("--val_image", nargs="+", default=None, metavar="FILE", help="validation images")
    data.add_argument("--val_label", nargs="+", default=None, metavar="FILE", help="their label maps")
    model = parser.add_argument_group("model")
    model.add_argument("--model", required=True,
                       help="catalogue name, checkpoint, MONAI bundle folder or nnU-Net v2 trained-model folder")
    model.add_argument("--model_name", default=None, help="checkpoint architecture: unet, unet-r or swin-unetr")
    model.add_argument("--out_channels", type=int, default=None, help="checkpoint classes, background included")
    model.add_argument("--feature_size", type=int, default=None, help="checkpoint UNETR / Swin-UNETR width")
    model.add_argument("--unet_channels", type=int, nargs="+", default=None, help="checkpoint UNet channels")
    model.add_argument("--unet_strides", type=int, nargs="+", default=None, help="checkpoint UNet strides")
    model.add_argument("--num_res_units", type=int, default=None, help="checkpoint UNet residual units")
    for axis in "xyz":
        model.add_argument(f"--roi_{axis}", type=int, default=None, help=f"checkpoint ROI along {axis} (voxels)")
    for axis in "xyz":
        model.add_argument(f"--space_{axis}", type=float, default=None, help=f"checkpoint spacing along {axis} (mm)")
    model.add_argument("--a_min", type=float, default=None, help="checkpoint intensity window low end")
    model.add_argument("--a_max", type=float, default=None, help="checkpoint intensity window high end")
    model.add_argument("--folds", default=None, help="nnU-Net folder: the fold to fine-tune (default: the first)")
    model.add_argument("--checkpoint", default=None, help="nnU-Net folder: start from 'final' (default) or 'best'")
    model.add_argument("--trust_model_code", action="store_true", help="let a MONAI bundle's config run its code")
    run_group = parser.add_argument_group("fine-tuning")
    run_group.add_argument("--mode", default="vaft", help=f"{', '.join(MODES)} (default: vaft)")
    run_group.add_argument("--iterations", type=int, default=100, help="optimiser steps (default: 100)")
    run_group.add_argument("--optim_lr", type=float, default=1e-4,
                           help="AdamW learning rate, cosine-annealed to 0 (default: 1e-4)")
    run_group.add_argument("--crops", type=int, default=2, help="ROI crops per iteration (default: 2)")
    run_group.add_argument("--val_every", type=int, default=None,
                           help="validate every this many iterations (default: a quarter of the run)")
    run_group.add_argument("--output", required=True, help="the new model folder")
    run_group.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    run_group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run_group.add_argument("--precision", default="auto", help=f"{', '.join(PRECISIONS)} (default: auto)")
    run_group.add_argument("--seed", type=int, default=0, help="seed of crops, attack starts and training")
    attack = parser.add_argument_group("attack (the parameter table's rows, engine units)")
    attack.add_argument("--attack_name", default="vafa-3d", help="attack making the examples (default: vafa-3d)")
    for row in _ATTACK_ROWS:
        _add_parameter(attack, row)


def _pairs(images: list[str] | None, labels: list[str] | None, image_flag: str, label_flag: str) -> list | None:
    if images is None and labels is None:
        return None
    if images is None or labels is None or len(images) != len(labels):
        raise ValueError(f"{label_flag} must give one label map per {image_flag} image, got "
                         f"{len(images or [])} images and {len(labels or [])} label maps.")
    return list(zip(images, labels, strict=True))


def _source(split: str | None, pairs: list | None, flag: str, pair_flag: str) -> Any:
    if split is not None and pairs is not None:
        raise ValueError(f"{flag} must be left out when {pair_flag} is given (one source of cases), got {split!r}.")
    return split if split is not None else pairs


def _attack_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Engine parameters of the attack flags that were given; flags the attack does not take are named."""
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.attacks.parameters import attack_ndim, fit_block_size
    from SpectrumAttackLib.checks import check_choice
    from SpectrumAttackLib.workflows.harden import MODES

    check_choice("--mode", args.mode, MODES)
    name = check_choice("--attack_name", args.attack_name, attacks.available())
    taken = {p.engine for p in parameters_of(name)} if args.mode != "normal" else set()
    params: dict[str, Any] = {}
    ignored: list[str] = []
    for row in _ATTACK_ROWS:
        value = getattr(args, row.dest)
        if value is None:
            continue
        if row.engine not in taken:
            ignored.append(row.flag)
            continue
        parsed = row.parse(value, row.flag)
        params[row.engine] = fit_block_size(parsed, attack_ndim(name)) if row.kind == "block" else parsed
    if ignored:
        reason = "in --mode normal" if args.mode == "normal" else f"with attack {name!r}"
        warnings.warn(f"flag{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} "
                      f"{'have' if len(ignored) > 1 else 'has'} no effect {reason}.", UserWarning, stacklevel=2)
    return name, params


def _model_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """``load_model`` keywords from the checkpoint or nnU-Net flags that were given."""
    from SpectrumAttackLib.models.catalogue import Preprocessing
    from SpectrumAttackLib.models.nnunet import is_nnunet_folder

    path = Path(args.model).expanduser()
    checkpoint_file = path.is_file()
    given = [f for f in (*CHECKPOINT_FLAGS, *_PREPROCESSING_FLAGS) if getattr(args, f) is not None]
    if given and not checkpoint_file:
        raise ValueError(f"--{given[0]} applies to checkpoint files only (catalogue models, bundles and nnU-Net "
                         f"folders describe themselves), got --model {args.model!r}.")
    nnunet = [f for f in ("folds", "checkpoint") if getattr(args, f) is not None]
    if nnunet and not is_nnunet_folder(path):
        raise ValueError(f"--{nnunet[0]} applies to nnU-Net model folders only, got --model {args.model!r}.")
    arguments: dict[str, Any] = {"folds": [args.folds]} if args.folds is not None else {}
    if args.checkpoint is not None:
        arguments["checkpoint"] = args.checkpoint
    if args.trust_model_code:
        arguments["trust_code"] = True
    for flag, keyword in CHECKPOINT_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            arguments[keyword] = tuple(value) if isinstance(value, list) else value
    if checkpoint_file and any(getattr(args, f) is not None for f in _PREPROCESSING_FLAGS):
        base = Preprocessing()

        def pick(flag: str, default: Any) -> Any:
            value = getattr(args, flag)
            return default if value is None else value

        roi = tuple(pick(f"roi_{a}", r) for a, r in zip("xyz", base.roi, strict=True))
        arguments["preprocessing"] = Preprocessing(
            spacing_mm=tuple(pick(f"space_{a}", s) for a, s in zip("xyz", base.spacing_mm, strict=True)),
            a_min=pick("a_min", base.a_min), a_max=pick("a_max", base.a_max), roi=roi)
        arguments["roi"] = roi
    return arguments


def run(args: argparse.Namespace) -> int:
    """Fine-tune and write the model; print where it is and its last validation Dice. Returns 0."""
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.workflows.harden import harden

    training = _source(args.training, _pairs(args.image, args.label, "--image", "--label"), "--training", "--image")
    if training is None:
        raise ValueError("--training must be a split json or dataset folder (or give --image and --label), got "
                         "none.")
    validation = _source(args.validation, _pairs(args.val_image, args.val_label, "--val_image", "--val_label"),
                         "--validation", "--val_image")
    attack_name, params = _attack_params(args)
    with progress_bar(0, "harden") as bar:
        result = harden(training, args.model, mode=args.mode, attack=attack_name, params=params,
                        iterations=args.iterations, validation=validation, output=args.output, device=args.device,
                        precision=args.precision, seed=args.seed, progress=bar.as_callback(),
                        model_arguments=_model_arguments(args), overwrite=args.overwrite, learning_rate=args.optim_lr,
                        crops=args.crops, val_every=args.val_every)  # fmt: skip
    validated = [row["val_dice"] for row in result.history if row["val_dice"] is not None]
    dice = f"; validation Dice {validated[-1]:.4f}" if validated and not math.isnan(validated[-1]) else ""
    attack = "" if args.mode == "normal" else f", attack {attack_name}"
    print(f"hardened {args.model} ({args.mode}{attack}, {args.iterations} iterations, {result.seconds:.0f} s, final "
          f"loss {result.history[-1]['loss']:.4f}{dice})")
    print(f"{result.model_kind} written to {result.model_path} (use it as --model {result.model_path})")
    return 0
