"""``spectrum-attack train``: the reference's ``run_normal_or_adv_training.py`` with the same flags.

Normal training, adversarial training (``--adv_training_mode``, any attack of the registry made on the fly per
batch) or VAFT (``--adv_training_mode --freq_reg_mode``), validated with sliding windows on the whole validation
volumes of ``--json_list``. Results go to ``<save_model_dir>/<run folder>/`` (``model_best.pt``,
``model_latest.pt``, ``train_log.csv``); the run folder is ``--exp_name``, else named after the mode and attack
(``normal``, ``adv_pgd_eps4_alpha0.01_steps20``, ``vaft_saa_rho0.2_steps20_block32x32x32_ld0.01_ssim``), or
``save_model_dir`` itself with ``--no_sub_dir_model``. Existing checkpoints are never replaced unless
``--overwrite`` (start again) or ``--resume`` (continue) is given.

Under ``torchrun`` (or the seed's ``--distributed`` flags) every process trains the same network wrapped in
``DistributedDataParallel`` on its ``DistributedSampler`` share of the crops, makes its own adversarial examples,
validates its share of the cases (the mean Dice is all-reduced over the ranks); rank 0 alone writes the run folder.

Example (the seed README's VAFT command, only the program name changed)::

    spectrum-attack train --model_name unet-r --in_channels 1 --out_channel 14 --feature_size=16 --batch_size=3 \\
        --max_epochs 5000 --optim_lr=1e-4 --lrschedule=warmup_cosine --infer_overlap=0.5 --save_checkpoint \\
        --dataset btcv --data_dir=DATA --json_list=dataset_synapse_18_12.json --use_pretrained \\
        --pretrained_path=clean.pt --save_model_dir=runs --val_every 15 --adv_training_mode --freq_reg_mode \\
        --attack_name saa --rho 0.2 --steps 20 --block_size 32 32 32 --lambda_dice 0.01 --use_ssim_loss
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.cli.adv_paths import sub_dir_name
from SpectrumAttackLib.cli.args import (
    ATTACK_FLAGS,
    DATA_FLAGS,
    MODEL_FLAGS,
    add_seed_arguments,
    flag_given,
    warn_ignored_flags,
)
from SpectrumAttackLib.cli.converters import attack_params_from_args, data_config_from_args, model_build_args
from SpectrumAttackLib.models.catalogue import ARCHITECTURES
from SpectrumAttackLib.precision import PRECISIONS
from SpectrumAttackLib.training.config import CHECKPOINT_BEST, CHECKPOINT_LATEST, LOG_NAME

if TYPE_CHECKING:
    from SpectrumAttackLib.distributed import DistContext

__all__ = ["TRAIN_FLAGS", "add_parser", "run", "run_dir_name"]

#: flags read by ``train`` besides the data and model flags (and the attack flags in adversarial modes).
TRAIN_FLAGS: tuple[str, ...] = (
    "resume", "resume_latest", "resume_best", "resume_but_restart", "save_checkpoint", "max_epochs", "val_every",
    "batch_size", "sw_batch_size", "optim_lr", "optim_name", "reg_weight", "momentum", "noamp", "lrschedule",
    "warmup_epochs", "distributed", "smooth_dr", "smooth_nr", "infer_overlap", "adv_training_mode", "freq_reg_mode",
    "save_model_dir", "no_sub_dir_model", "debugging", "exp_name", "overwrite", "seed", "val_metric", "precision",
    "world_size", "rank", "dist_url", "dist_backend",
)
_OUTPUTS = (CHECKPOINT_BEST, CHECKPOINT_LATEST, LOG_NAME)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand with every seed flag."""
    parser = subparsers.add_parser(
        "train",
        help="normal, adversarial or VAFT training (the seed's run_normal_or_adv_training.py)",
        description="Train a segmentation model: normal (DiceCE), adversarial (--adv_training_mode: DiceCE on "
        "examples of --attack_name made per batch) or VAFT (--adv_training_mode --freq_reg_mode: clean + "
        "adversarial DiceCE + frequency consistency). Takes the flags of the reference scripts; flags without "
        "effect are named in a warning. --model NAME builds a catalogue architecture (weights only with "
        "--use_pretrained).",
    )
    add_seed_arguments(parser)


def run_dir_name(args: argparse.Namespace, attack_name: str | None, params: dict[str, Any]) -> str:
    """The run's sub-folder: ``--exp_name``, else ``normal``, ``adv_<attack folder>`` or ``vaft_<attack folder>``."""
    if args.exp_name:
        return args.exp_name
    if not args.adv_training_mode:
        return "normal"
    return f"{'vaft' if args.freq_reg_mode else 'adv'}_{sub_dir_name(attack_name, params)}"


def _attack(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """Attack name and parameters for adversarial modes; the loop seeds each batch, so ``seed`` is dropped."""
    if not args.adv_training_mode:
        return None, {}
    name, params = attack_params_from_args(args)
    params.pop("seed", None)
    return name, params


def _model_spec(args: argparse.Namespace) -> tuple[str, int, dict[str, Any], str | None]:
    """Architecture, class count and builder keywords of the network, and the checkpoint to fine-tune from.

    ``--model NAME`` takes the architecture of a catalogue entry (its weights only with ``--use_pretrained`` and
    no ``--pretrained_path``); otherwise ``--model_name`` and the seed's size flags.
    """
    from SpectrumAttackLib.models import get_entry

    roi = (args.roi_x, args.roi_y, args.roi_z)
    if args.pretrained_path and not args.use_pretrained:
        warnings.warn("flag --pretrained_path has no effect without --use_pretrained.", UserWarning, stacklevel=3)
    if args.use_pretrained and not args.pretrained_path and not args.model:
        raise ValueError("--pretrained_path must be a checkpoint file when --use_pretrained is given, got ''.")
    pretrained = args.pretrained_path if args.use_pretrained and args.pretrained_path else None
    if args.model:
        entry = get_entry(args.model)
        if flag_given(args, "out_channels") and args.out_channels != entry.num_classes:
            raise ValueError(f"--out_channels must be {entry.num_classes} for model {entry.name!r}, "
                             f"got {args.out_channels!r}.")  # fmt: skip
        _warn_preprocessing(args, entry)
        if args.use_pretrained and pretrained is None:
            pretrained = str(entry.weights_path)
        return entry.architecture, entry.num_classes, {"roi": roi, **entry.arguments}, pretrained
    if args.model_name in (None, "None"):
        raise ValueError(f"--model_name must be one of {', '.join(map(repr, ARCHITECTURES))} (or --model NAME), got "
                         "'None'.")
    check_choice("--model_name", args.model_name, ARCHITECTURES)
    _, kwargs = model_build_args(args)  # the architecture's sizes, UNet's --unet_channels ... included
    return args.model_name, args.out_channels, kwargs, pretrained


def _warn_preprocessing(args: argparse.Namespace, entry: Any) -> None:
    """Warn when the data flags differ from the catalogue entry's preprocessing (its users will apply that)."""
    pre = entry.preprocessing
    flags = {"--space_x/y/z": ((args.space_x, args.space_y, args.space_z), tuple(pre.spacing_mm)),
             "--roi_x/y/z": ((args.roi_x, args.roi_y, args.roi_z), tuple(pre.roi)),
             "--a_min/--a_max": ((args.a_min, args.a_max), (pre.a_min, pre.a_max))}
    differ = [f"{flag} {given} (catalogue: {wanted})" for flag, (given, wanted) in flags.items()
              if tuple(float(v) for v in given) != tuple(float(v) for v in wanted)]
    if differ:
        warnings.warn(f"model {entry.name!r} is used with other preprocessing than its catalogue entry: "
                      f"{'; '.join(differ)}.", UserWarning, stacklevel=3)  # fmt: skip


def _run_dir(args: argparse.Namespace, attack_name: str | None, params: dict[str, Any]) -> Path | None:
    """The output folder (None with ``--debugging`` or without ``--save_model_dir``), checked for old results."""
    if args.debugging or args.save_model_dir is None:
        return None
    root = Path(args.save_model_dir)
    folder = root if args.no_sub_dir_model else root / run_dir_name(args, attack_name, params)
    existing = [folder / name for name in _OUTPUTS if (folder / name).is_file()]
    resuming = args.resume or args.resume_latest or args.resume_best or args.resume_but_restart
    if existing and not resuming:
        if not args.overwrite:
            raise ValueError(
                f"--save_model_dir must not already hold this run's results (pass --overwrite to start again or "
                f"--resume to continue), got {str(folder)!r} with {', '.join(p.name for p in existing)}."
            )
        for path in existing:
            path.unlink()
    return folder


def training_precision(args: argparse.Namespace) -> str:
    """``--precision``, with the seed's ``--noamp`` meaning ``fp32``.

    Raises:
        ValueError: an unknown ``--precision``, or ``--noamp`` with ``--precision bf16``/``fp16``.
    """
    precision = check_choice("--precision", args.precision, PRECISIONS)
    if args.noamp and precision not in ("auto", "fp32"):
        raise ValueError(f"--precision must be 'auto' or 'fp32' with --noamp (which turns mixed precision off), "
                         f"got {precision!r}.")
    return "fp32" if args.noamp else precision


def run(args: argparse.Namespace) -> int:
    """Train as the flags say; print the best validation Dice and where the checkpoints are. Returns 0.

    Runs in every process of a distributed run (torchrun or ``--distributed``); see the module docstring.
    """
    from SpectrumAttackLib.distributed import launch

    return launch(_train, args)


def _train(args: argparse.Namespace, ctx: DistContext) -> int:
    """The training run of one process."""
    import torch

    from SpectrumAttackLib.data.datalist import load_datalist
    from SpectrumAttackLib.data.loaders import make_loader
    from SpectrumAttackLib.data.transforms import eval_transforms, train_transforms
    from SpectrumAttackLib.distributed import distributed_sampler, on_main, wrap_model
    from SpectrumAttackLib.models import build_model
    from SpectrumAttackLib.precision import resolve_precision
    from SpectrumAttackLib.report.progress import progress_bar
    from SpectrumAttackLib.training.config import TrainConfig
    from SpectrumAttackLib.training.loop import train

    used = {*TRAIN_FLAGS, *DATA_FLAGS, *MODEL_FLAGS}
    if args.adv_training_mode:
        used |= {"attack_name", *ATTACK_FLAGS}
    warn_ignored_flags(args, used, "train")
    precision = resolve_precision(training_precision(args), ctx.device, name="--precision").requested
    attack_name, attack_params = _attack(args)
    architecture, num_classes, build_kwargs, pretrained = _model_spec(args)
    folder = on_main(lambda: _run_dir(args, attack_name, attack_params), ctx)  # rank 0 checks and clears it
    config = TrainConfig(
        max_epochs=args.max_epochs, val_every=args.val_every, batch_size=args.batch_size,
        optim_name=args.optim_name, optim_lr=args.optim_lr, reg_weight=args.reg_weight, momentum=args.momentum,
        lrschedule=args.lrschedule, warmup_epochs=args.warmup_epochs, precision=precision,
        save_checkpoint=args.save_checkpoint and folder is not None, save_model_dir=folder,
        resume=args.resume, resume_latest=args.resume_latest, resume_best=args.resume_best,
        resume_but_restart=args.resume_but_restart, adv_training_mode=args.adv_training_mode,
        freq_reg_mode=args.freq_reg_mode, attack_name=attack_name, attack_params=attack_params,
        roi=(args.roi_x, args.roi_y, args.roi_z), infer_overlap=args.infer_overlap,
        sw_batch_size=args.sw_batch_size, smooth_nr=args.smooth_nr, smooth_dr=args.smooth_dr, seed=args.seed,
        pretrained_path=pretrained, val_metric=args.val_metric,
    )
    data = data_config_from_args(args)
    cache = not args.use_normal_dataset
    train_files = load_datalist(args.data_dir, args.json_list, "training")
    sampler = distributed_sampler(train_files, ctx, seed=args.seed)
    train_loader = make_loader(
        train_files, train_transforms(data, seed=args.seed), batch_size=args.batch_size, shuffle=sampler is None,
        workers=args.workers, cache=cache, sampler=sampler, seed=args.seed,
    )
    val_loader = make_loader(load_datalist(args.data_dir, args.json_list, "validation"), eval_transforms(data),
                             batch_size=1, shuffle=False, workers=args.workers, cache=cache)  # fmt: skip
    torch.manual_seed(args.seed)  # initial weights
    model = wrap_model(build_model(architecture, num_classes, **build_kwargs), ctx)
    bar = progress_bar(0, "train") if ctx.is_main else None
    with bar or contextlib.nullcontext():
        result = train(model, train_loader, val_loader, config, device=ctx.device,
                       progress=bar.as_callback() if bar else None, rank=ctx.rank, world_size=ctx.world_size)
    if not ctx.is_main:
        return 0
    print(f"trained {result.last_epoch} epochs ({config.mode.value}) in {result.seconds:.0f} s; best mean validation "
          f"Dice {result.best_metric:.4f} at epoch {result.best_epoch}")  # fmt: skip
    if folder is not None:
        print(f"results in {folder}")
    return 0
