"""The command-line flags: the seed's table, ours, which subcommand lists which, and the warnings about flags that
have no effect.

Every flag of the reference parser (``utils/get_args.py`` of asif-hanif/saa, listed in ``seed-flags.md``) is
accepted by the seed's subcommands (``attack``, ``evaluate``, ``train``, and ``transfer``) with the same spelling,
type and default, odd ones included (``--dist-url``, ``--RandFlipd_prob``, ``--out_channels``, ``--block_size 8 8
8``); our own flags are added beside them (:func:`add_seed_arguments`). Our own subcommands (``audit``, ``demo``, and
those to come) list only the flags that act in them (:func:`add_flags`). On the seed's subcommands a flag that has
no effect for the chosen attack or subcommand is accepted and named in a warning, never rejected.

The flags become Lib objects in :mod:`SpectrumAttackLib.cli.converters`, and only there.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from SpectrumAttackLib.attacks.parameters import ATTACK_PARAMETERS, PARAMETERS
from SpectrumAttackLib.checks import check_choice

__all__ = [
    "ATTACK_FLAGS",
    "CASE_FLAGS",
    "DATA_FLAGS",
    "EXTRA_FLAGS",
    "MODEL_FLAGS",
    "PREPROCESSING_FLAGS",
    "SEED_FLAGS",
    "add_flags",
    "add_seed_arguments",
    "check_choices",
    "flag_default",
    "flag_given",
    "option_string",
    "warn_ignored_flags",
]

_FLAG = "flag"  # marker for store_true flags in the table below


def _dest(spec: tuple[str, Any, Any, str | None, str]) -> str:
    return spec[0].lstrip("-").replace("-", "_")


#: (option strings, type or _FLAG, default, nargs, help) for every flag of the reference parser, in its order.
SEED_FLAGS: list[tuple[str, Any, Any, str | None, str]] = [
    ("--use_pretrained", _FLAG, False, None, "initialise the model from a checkpoint"),
    ("--pretrained_path", str, "", None, "checkpoint file to load"),
    ("--resume", _FLAG, False, None, "continue training from a checkpoint"),
    ("--resume_latest", _FLAG, False, None, "continue from the latest checkpoint"),
    ("--resume_best", _FLAG, False, None, "continue from the best checkpoint"),
    ("--resume_but_restart", _FLAG, False, None, "load a checkpoint's weights but start counting epochs at 0"),
    ("--logdir", str, "None", None, "folder for TensorBoard logs"),
    ("--data_dir", str, "None", None, "dataset root (imagesTr/, labelsTr/, split json)"),
    ("--json_list", str, "None", None, "split file name inside data_dir"),
    ("--save_checkpoint", _FLAG, False, None, "write checkpoints while training"),
    ("--max_epochs", int, 5000, None, "number of training epochs"),
    ("--val_every", int, 100, None, "validate every N epochs"),
    ("--batch_size", int, 1, None, "training batch size (volumes; each gives 4 crops)"),
    ("--sw_batch_size", int, 1, None, "windows per batch in sliding-window inference"),
    ("--optim_lr", float, 1e-4, None, "learning rate"),
    ("--optim_name", str, "adamw", None, "optimiser: adamw, adam or sgd"),
    ("--reg_weight", float, 1e-5, None, "weight decay"),
    ("--momentum", float, 0.99, None, "SGD momentum"),
    ("--noamp", _FLAG, False, None, "turn mixed precision off"),
    ("--lrschedule", str, "warmup_cosine", None, "LR schedule: warmup_cosine or cosine_anneal"),
    ("--warmup_epochs", int, 50, None, "linear warm-up epochs"),
    ("--distributed", _FLAG, False, None, "multi-process training"),
    ("--world_size", int, 1, None, "number of nodes"),
    ("--rank", int, 0, None, "node rank"),
    ("--dist-url", str, "tcp://127.0.0.1:23456", None, "rendezvous address"),
    ("--dist-backend", str, "nccl", None, "nccl or gloo"),
    ("--workers", int, 8, None, "data-loader workers"),
    ("--model_name", str, "None", None, "unet, unet-r, swin-unetr or segresnet"),
    ("--pos_embed", str, "perceptron", None, "UNETR patch embedding (proj_type in MONAI)"),
    ("--norm_name", str, "instance", None, "decoder normalisation"),
    ("--num_heads", int, 12, None, "ViT heads"),
    ("--mlp_dim", int, 3072, None, "ViT MLP width"),
    ("--hidden_size", int, 768, None, "ViT hidden size"),
    ("--feature_size", int, 16, None, "base feature width (Swin-UNETR: multiple of 12)"),
    ("--in_channels", int, 1, None, "input channels"),
    ("--out_channels", int, 14, None, "classes incl. background"),
    ("--res_block", _FLAG, False, None, "residual blocks in UNETR decoder"),
    ("--conv_block", _FLAG, False, None, "conv blocks in UNETR decoder"),
    ("--dropout_rate", float, 0.0, None, "dropout"),
    ("--dropout_path_rate", float, 0.0, None, "stochastic depth (Swin-UNETR)"),
    ("--spatial_dims", int, 3, None, "2 or 3"),
    ("--use_checkpoint", _FLAG, False, None, "gradient checkpointing (Swin-UNETR)"),
    ("--dataset", str, None, None, "btcv or acdc"),
    ("--use_normal_dataset", _FLAG, False, None, "plain Dataset instead of a cached one"),
    ("--a_min", float, -175.0, None, "intensity window low (HU)"),
    ("--a_max", float, 250.0, None, "intensity window high (HU)"),
    ("--b_min", float, 0.0, None, "scaled low"),
    ("--b_max", float, 1.0, None, "scaled high"),
    ("--space_x", float, 1.5, None, "target spacing x (mm)"),
    ("--space_y", float, 1.5, None, "target spacing y (mm)"),
    ("--space_z", float, 2.0, None, "target spacing z (mm)"),
    ("--roi_x", int, 96, None, "tile/crop size x (voxels)"),
    ("--roi_y", int, 96, None, "tile/crop size y (voxels)"),
    ("--roi_z", int, 96, None, "tile/crop size z (voxels)"),
    ("--RandFlipd_prob", float, 0.2, None, "flip augmentation probability"),
    ("--RandRotate90d_prob", float, 0.2, None, "90° rotation probability"),
    ("--RandScaleIntensityd_prob", float, 0.1, None, "intensity scaling probability"),
    ("--RandShiftIntensityd_prob", float, 0.1, None, "intensity shift probability"),
    ("--smooth_dr", float, 1e-6, None, "Dice denominator smoothing"),
    ("--smooth_nr", float, 0.0, None, "Dice numerator smoothing"),
    ("--infer_overlap", float, 0.5, None, "sliding-window overlap"),
    ("--attack_name", str, None, None, "saa, saa-2d, vafa-3d, vafa-2d, pgd, fgsm, bim, gn, segpgd, cospgd, dfb, …"),
    ("--steps", int, 20, None, "attack iterations"),
    ("--alpha", float, 0.01, None, "step size of voxel attacks ([0, 1] units, used as is, not /255)"),
    ("--eps", float, 4, None, "L∞ budget on the 0–255 scale (4 means 4/255)"),
    ("--std", float, 4, None, "Gaussian-noise sigma on the 0–255 scale"),
    ("--targeted", _FLAG, False, None, "targeted attack (needs target label maps: Python API only)"),
    ("--q_max", float, 20, None, "VAFA upper bound of the quantisation table"),
    ("--num_spectrum_augs", int, 10, None, "SSA: spectrum augmentations per step"),
    ("--rho", float, 0.2, None, "SA² budget: xi in [1-rho, 1+rho]"),
    ("--use_ssim_loss", _FLAG, False, None, "add the SSIM term to the attack objective"),
    ("--lambda_dice", float, 0.01, None, "weight of the DiceCE term"),
    ("--lambda_ce", float, 0.01, None, "CE weight for the 2D classification variant"),
    ("--lambda_ssim", float, 1, None, "weight of the SSIM term"),
    ("--block_size", int, [8, 8, 8], "+", "DCT block size: 3 values (3D attacks) or 2 (-2d attacks)"),
    ("--freq_band", str, "all", None, "all, low, middle or high"),
    ("--gen_train_adv_mode", _FLAG, False, None, "attack the training cases"),
    ("--gen_val_adv_mode", _FLAG, False, None, "attack the validation cases"),
    ("--adv_training_mode", _FLAG, False, None, "train on adversarial examples made on the fly"),
    ("--freq_reg_mode", _FLAG, False, None, "with --adv_training_mode: VAFT frequency regularisation"),
    ("--adv_images_dir", str, "", None, "folder of saved adversarial images to evaluate"),
    ("--save_adv_images_dir", str, None, None, "folder to write adversarial images"),
    ("--save_model_dir", str, None, None, "folder for trained checkpoints"),
    ("--no_sub_dir_model", _FLAG, False, None, "checkpoints directly in save_model_dir"),
    ("--no_sub_dir_adv_images", _FLAG, False, None, "adversarial images directly in the folder, no attack sub-folder"),
    ("--debugging", _FLAG, False, None, "write nothing; just run and print"),
    ("--exp_name", str, None, None, "sub-folder name for results"),
]

#: Our flags, added after the seed's.
EXTRA_FLAGS: list[tuple[str, Any, Any, str | None, str]] = [
    ("--model", str, None, None, "catalogue name or checkpoint path (instead of --model_name + --pretrained_path)"),
    ("--trust_model_code", _FLAG, False, None, "let a MONAI bundle's config run its Python code ($ expressions, "
                                               "any _target_); without it only MONAI network classes with literal "
                                               "arguments are built"),
    ("--image", str, None, None, "one image (NIfTI or NRRD) as the only case, instead of --data_dir/--json_list"),
    ("--label", str, None, None, "the label map of --image (class ids on its grid; optional)"),
    ("--device", str, "auto", None, "auto, cpu, cuda or cuda:N"),
    ("--precision", str, "auto", None, "model passes in auto (bf16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs "
                                       "with bf16, else fp32), fp32 (bit-for-bit reproducible), bf16 or fp16 (CUDA)"),
    ("--seed", int, 0, None, "seed of every random draw (attack start, data order)"),
    ("--attack_mode", str, "tiles", None, "whole-volume attack: 'tiles' (reference: roi tiles, batched) or "
                                          "'sliding-window' (the evaluation's overlapping windows, blended)"),
    ("--tile_batch_size", int, 4, None, "tiles attacked together (reference: 4)"),
    ("--overwrite", _FLAG, False, None, "replace results already in the output folder"),
    ("--save_model_grid", _FLAG, False, None, "attack --image: also write the model's view (the model-grid image in "
                                              "[0, 1], perturbation and predictions) as <case>_*_model_grid.nii.gz"),
    ("--metrics_preset", str, "paper", None, "'paper' (Dice incl. background, HD95 in voxels, as the reference) "
                                             "or 'clinical' (foreground Dice, HD95 in mm)"),
    ("--q_min", float, None, None, "VAFA lower bound of the quantisation table (reference: 5, hard-coded)"),
    ("--beta", float, None, None, "SA² sign-step size on xi (reference: 0.1, hard-coded)"),
    ("--vafa_variant", str, None, None, "VAFA 'code' (reference, per-slice renormalisation) or 'paper'"),
    ("--restarts", int, 1, None, "independent attack runs; each case keeps the strongest"),
    ("--early_stop", _FLAG, False, None, "stop once every voxel is misclassified (reference rule)"),
    ("--decay", float, 1.0, None, "MI-FGSM / VMI-FGSM momentum decay mu (published 1.0)"),
    ("--vmi_samples", int, 20, None, "VMI-FGSM neighbours per step (published 20)"),
    ("--vmi_beta", float, 1.5, None, "VMI-FGSM neighbourhood radius in units of eps (published 1.5)"),
    ("--loss", str, "dice-ce", None, "loss of PGD, FGSM, BIM and APGD: dice-ce, ce, masked-ce, balanced-masked-ce "
                                     "or js (SEA's losses)"),
    ("--progressive_radius", _FLAG, False, None, "APGD: SEA's radius schedule 2ε, 1.5ε, ε (30/30/40 %% of steps)"),
    ("--target_ssim", float, 0.0, None, "drive the budget per volume to the strongest whose 3-D SSIM stays >= this "
                                        "(bisection; a run up to 10 %% too strong is scaled back onto it; 0: the "
                                        "budget as given)"),
    ("--unet_channels", int, None, "+", "UNet channels per level (reference: 32 64 128 256 512)"),
    ("--unet_strides", int, None, "+", "UNet strides, one fewer than channels (reference: 2 2 2 2)"),
    ("--num_res_units", int, None, None, "UNet residual units per level (reference: 2)"),
    ("--init_filters", int, None, None, "SegResNet first width (Malik et al. 2024: 32)"),
    ("--val_metric", str, "foreground", None, "Dice that selects model_best.pt: 'foreground' (organs; a "
                                              "hallucinated organ scores 0) or 'reference' (incl. background, "
                                              "classes absent from the labels skipped)"),
    ("--folds", str, None, "+", "nnU-Net model folder: folds to ensemble, logits averaged (default: every fold)"),
    ("--checkpoint", str, None, None, "nnU-Net model folder: 'final' (default) or 'best' checkpoint"),
    ("--mirroring", _FLAG, False, None, "nnU-Net model folder: nnU-Net's test-time mirroring in every forward "
                                        "pass, attacks included (2^3 passes per window)"),
]

#: attack flag (argparse dest) → attack parameter name: the attack rows of ``attacks.parameters`` plus the seed.
ATTACK_FLAGS: dict[str, str] = {**{p.dest: p.engine for p in ATTACK_PARAMETERS}, "seed": "seed"}

#: the data flags that decide which cases are read and how they are preprocessed (not how training augments them).
PREPROCESSING_FLAGS: tuple[str, ...] = (
    "data_dir", "json_list", "dataset", "a_min", "a_max", "b_min", "b_max", "space_x", "space_y", "space_z",
)

#: flags read by :func:`~SpectrumAttackLib.cli.converters.data_config_from_args` and the data loaders.
DATA_FLAGS: tuple[str, ...] = (
    *PREPROCESSING_FLAGS, "roi_x", "roi_y", "roi_z", "RandFlipd_prob", "RandRotate90d_prob",
    "RandScaleIntensityd_prob", "RandShiftIntensityd_prob", "workers", "use_normal_dataset",
)

#: flags read by :func:`~SpectrumAttackLib.cli.converters.model_from_args`.
MODEL_FLAGS: tuple[str, ...] = (
    "model", "model_name", "use_pretrained", "pretrained_path", "pos_embed", "norm_name", "num_heads", "mlp_dim",
    "hidden_size", "feature_size", "in_channels", "out_channels", "res_block", "conv_block", "dropout_rate",
    "dropout_path_rate", "spatial_dims", "use_checkpoint", "roi_x", "roi_y", "roi_z", "device", "unet_channels",
    "unet_strides", "num_res_units", "trust_model_code", "folds", "checkpoint", "mirroring", "init_filters",
)

#: flags of the case source (:func:`SpectrumAttackLib.cli.cases.load_split`): one image instead of a split.
CASE_FLAGS: tuple[str, ...] = ("image", "label")

_DEFAULTS: dict[str, Any] = {_dest(flag): flag[2] for flag in (*SEED_FLAGS, *EXTRA_FLAGS)}

_CHOICES: dict[str, tuple[str, ...]] = {
    "attack_mode": ("tiles", "sliding-window"),
    "metrics_preset": ("paper", "clinical"),
    **{p.dest: p.choices for p in PARAMETERS if p.kind == "choice" and p.pattern is None},
}


def _add(parser: argparse.ArgumentParser, spec: tuple[str, Any, Any, str | None, str]) -> None:
    option, kind, default, nargs, help_text = spec
    if kind is _FLAG:
        parser.add_argument(option, action="store_true", help=help_text)
        return
    shown = "" if default is None else f" (default: {' '.join(map(str, default)) if nargs else default})"
    kwargs: dict[str, Any] = {"type": kind, "default": default, "help": help_text + shown}
    if nargs:
        kwargs["nargs"] = nargs
    parser.add_argument(option, **kwargs)


def add_seed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add every flag of the reference parser, then SpectrumAttack's own flags, to ``parser``.

    The seed's flags keep its spelling, type and default exactly (``seed-flags.md``); choices are checked by
    the converters, so an unknown value gives our one-line error naming the flag. Returns ``parser``.
    """
    seed = parser.add_argument_group("reference (seed) flags")
    for spec in SEED_FLAGS:
        _add(seed, spec)
    extra = parser.add_argument_group("SpectrumAttack flags")
    for spec in EXTRA_FLAGS:
        _add(extra, spec)
    return parser


def add_flags(parser: argparse.ArgumentParser, dests: Iterable[str]) -> argparse.ArgumentParser:
    """Add only the flags of the tables named by ``dests`` (argparse names), seed flags first in the reference's
    order, so that ``--help`` lists only the flags that act in the subcommand; any other flag is refused by argparse.

    Every flag left out still gets its default on the namespace (not listed, not settable), so the converters read
    the seed's defaults where a subcommand has no say. Returns ``parser``.
    """
    dests = set(dests)
    for title, table in (("reference (seed) flags", SEED_FLAGS), ("SpectrumAttack flags", EXTRA_FLAGS)):
        chosen = [spec for spec in table if _dest(spec) in dests]
        if chosen:
            group = parser.add_argument_group(title)
            for spec in chosen:
                _add(group, spec)
    parser.set_defaults(**{dest: default for dest, default in _DEFAULTS.items() if dest not in dests})
    return parser


def flag_default(dest: str) -> Any:
    """The parser default of flag ``dest`` (argparse name, e.g. ``"dist_url"``)."""
    return _DEFAULTS[dest]


def flag_given(args: argparse.Namespace, dest: str, defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether flag ``dest`` differs from its default (argparse cannot tell "given with the default value").

    ``defaults`` overrides the seed's defaults for a subcommand with its own (``demo`` uses the README's SA²).
    """
    default = (defaults or {}).get(dest, _DEFAULTS[dest])
    return getattr(args, dest, default) != default


def option_string(dest: str) -> str:
    """The flag as typed (``"dist_url"`` → ``"--dist-url"``)."""
    for spec in (*SEED_FLAGS, *EXTRA_FLAGS):
        if _dest(spec) == dest:
            return spec[0]
    return f"--{dest}"


def warn_ignored_flags(args: argparse.Namespace, used: Iterable[str], command: str) -> list[str]:
    """Warn once about every given flag that ``command`` does not read; return their option strings.

    Args:
        args: the parsed namespace.
        used: argparse dests the subcommand reads.
        command: subcommand name used in the message (``"attack"``, ``"evaluate"``).
    """
    used = set(used)
    ignored = [option_string(d) for d in _DEFAULTS if d not in used and hasattr(args, d) and flag_given(args, d)]
    if ignored:
        warnings.warn(
            f"flag{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} "
            f"{'have' if len(ignored) > 1 else 'has'} no effect with spectrum-attack {command}.",
            UserWarning,
            stacklevel=2,
        )
    return ignored


def check_choices(args: argparse.Namespace) -> None:
    """Reject unknown values of the flags with a fixed set of choices (message names the flag)."""
    for dest, choices in _CHOICES.items():
        value = getattr(args, dest, None)
        if value is not None:
            check_choice(option_string(dest), value, choices)
