"""The seed's command-line flags and their conversion into Lib objects.

Every flag of the reference parser (``utils/get_args.py`` of asif-hanif/saa, listed in ``seed-flags.md``) is
accepted with the same spelling, type and default, odd ones included (``--dist-url``, ``--RandFlipd_prob``,
``--out_channels``, ``--block_size 8 8 8``). Our own flags are added beside them. The converters here are the
ONLY place where flags become Lib objects (attack parameters, a data configuration, a loaded model); a flag that
has no effect for the chosen attack or subcommand is accepted and named in a warning, never rejected.

Units: ``--eps`` and ``--std`` stay on the seed's 0–255 scale (the attacks convert them once); ``--alpha`` is
used as given ([0, 1] intensity units); ``--block_size`` becomes a tuple of 2 (``-2d`` attacks) or 3 entries.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import ATTACK_PARAMETERS, PARAMETERS, attack_ndim, fit_block_size
from SpectrumAttackLib.checks import check_choice

if TYPE_CHECKING:
    import torch

    from SpectrumAttackLib.data.transforms import DataConfig
    from SpectrumAttackLib.models import LoadedModel
    from SpectrumAttackLib.models.catalogue import Preprocessing

__all__ = [
    "ATTACK_FLAGS",
    "CASE_FLAGS",
    "DATA_FLAGS",
    "MODEL_FLAGS",
    "SEED_FLAGS",
    "add_seed_arguments",
    "attack_params_from_args",
    "check_choices",
    "data_config_from_args",
    "flag_default",
    "flag_given",
    "model_build_args",
    "model_from_args",
    "warn_ignored_flags",
]

_FLAG = "flag"  # marker for store_true flags in the table below

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
    ("--model_name", str, "None", None, "unet, unet-r or swin-unetr"),
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
    ("--metrics_preset", str, "paper", None, "'paper' (Dice incl. background, HD95 in voxels, as the reference) "
                                             "or 'clinical' (foreground Dice, HD95 in mm)"),
    ("--q_min", float, None, None, "VAFA lower bound of the quantisation table (reference: 5, hard-coded)"),
    ("--beta", float, None, None, "SA² sign-step size on xi (reference: 0.1, hard-coded)"),
    ("--vafa_variant", str, None, None, "VAFA 'code' (reference, per-slice renormalisation) or 'paper'"),
    ("--restarts", int, 1, None, "independent attack runs; each case keeps the strongest"),
    ("--early_stop", _FLAG, False, None, "stop once every voxel is misclassified (reference rule)"),
    ("--loss", str, "dice-ce", None, "loss of PGD, FGSM, BIM and APGD: dice-ce, ce, masked-ce, balanced-masked-ce "
                                     "or js (SEA's losses)"),
    ("--progressive_radius", _FLAG, False, None, "APGD: SEA's radius schedule 2ε, 1.5ε, ε (30/30/40 %% of steps)"),
    ("--target_ssim", float, 0.0, None, "drive the budget per volume to the strongest whose 3-D SSIM stays >= this "
                                        "(bisection; 0: the budget as given)"),
    ("--unet_channels", int, None, "+", "UNet channels per level (reference: 32 64 128 256 512)"),
    ("--unet_strides", int, None, "+", "UNet strides, one fewer than channels (reference: 2 2 2 2)"),
    ("--num_res_units", int, None, None, "UNet residual units per level (reference: 2)"),
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

#: flags read by :func:`data_config_from_args`.
DATA_FLAGS: tuple[str, ...] = (
    "data_dir", "json_list", "dataset", "a_min", "a_max", "b_min", "b_max", "space_x", "space_y", "space_z",
    "roi_x", "roi_y", "roi_z", "RandFlipd_prob", "RandRotate90d_prob", "RandScaleIntensityd_prob",
    "RandShiftIntensityd_prob", "workers", "use_normal_dataset",
)

#: flags read by :func:`model_from_args`.
MODEL_FLAGS: tuple[str, ...] = (
    "model", "model_name", "use_pretrained", "pretrained_path", "pos_embed", "norm_name", "num_heads", "mlp_dim",
    "hidden_size", "feature_size", "in_channels", "out_channels", "res_block", "conv_block", "dropout_rate",
    "dropout_path_rate", "spatial_dims", "use_checkpoint", "roi_x", "roi_y", "roi_z", "device", "unet_channels",
    "unet_strides", "num_res_units", "trust_model_code", "folds", "checkpoint", "mirroring",
)

#: flags of the case source (:func:`SpectrumAttackLib.cli.cases.load_split`): one image instead of a split.
CASE_FLAGS: tuple[str, ...] = ("image", "label")

#: build_model keyword → the flags that set it (a TorchScript file takes only those given on the command line).
_BUILD_FLAGS: dict[str, tuple[str, ...]] = {
    "in_channels": ("in_channels",), "spatial_dims": ("spatial_dims",), "dropout_rate": ("dropout_rate",),
    "roi": ("roi_x", "roi_y", "roi_z"), "feature_size": ("feature_size",), "norm_name": ("norm_name",),
    "hidden_size": ("hidden_size",), "mlp_dim": ("mlp_dim",), "num_heads": ("num_heads",),
    "pos_embed": ("pos_embed",), "dropout_path_rate": ("dropout_path_rate",), "use_checkpoint": ("use_checkpoint",),
    "channels": ("unet_channels",), "strides": ("unet_strides",), "num_res_units": ("num_res_units",),
}

_DEFAULTS: dict[str, Any] = {
    flag[0].lstrip("-").replace("-", "_"): flag[2] for flag in (*SEED_FLAGS, *EXTRA_FLAGS)
}

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


def flag_default(dest: str) -> Any:
    """The parser default of flag ``dest`` (argparse name, e.g. ``"dist_url"``)."""
    return _DEFAULTS[dest]


def flag_given(args: argparse.Namespace, dest: str, defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether flag ``dest`` differs from its default (argparse cannot tell "given with the default value").

    ``defaults`` overrides the seed's defaults for a subcommand with its own (``demo`` uses the README's SA²).
    """
    default = (defaults or {}).get(dest, _DEFAULTS[dest])
    return getattr(args, dest, default) != default


def _option(dest: str) -> str:
    for spec in (*SEED_FLAGS, *EXTRA_FLAGS):
        if spec[0].lstrip("-").replace("-", "_") == dest:
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
    ignored = [_option(d) for d in _DEFAULTS if d not in used and hasattr(args, d) and flag_given(args, d)]
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
            check_choice(_option(dest), value, choices)


def attack_params_from_args(
    args: argparse.Namespace, defaults: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The attack name and the keyword parameters it accepts, from the seed's attack flags.

    Only parameters the attack's constructor takes are passed (``attacks.attack_parameters``); every other
    attack flag that was given (differs from its default) is named in one ``UserWarning`` ("flag --alpha has
    no effect with attack 'saa'"). Our flags whose default is ``None`` (``--q_min``, ``--beta``,
    ``--vafa_variant``) are passed only when given, so the attack's own default (the table's,
    ``attacks.parameters``) applies otherwise and run-folder names keep their form.

    Units: ``eps`` and ``std`` stay on the 0–255 scale (the attack divides by 255 once); ``alpha`` as given;
    ``block_size`` fitted to the attack by ``attacks.parameters.fit_block_size`` (the seed default 8 8 8 becomes
    8 8 for the ``-2d`` attacks).
    ``defaults`` replaces the seed's defaults when deciding whether a flag was given (see :func:`flag_given`).

    Raises:
        ValueError: no or unknown ``--attack_name``, or ``--targeted`` (the command line has no target maps).
    """
    name = getattr(args, "attack_name", None)
    if name is None:
        raise ValueError(f"--attack_name must be one of {', '.join(attacks.available())}, got None.")
    check_choice("--attack_name", name, attacks.available())
    if args.targeted:
        raise ValueError(
            "--targeted must be off on the command line, got True (a targeted attack needs target label maps; "
            "use the Python API: attack(images, labels, target_labels=...))."
        )
    check_choices(args)
    accepted = attacks.attack_parameters(name)
    params: dict[str, Any] = {}
    ignored: list[str] = []
    for dest, param in ATTACK_FLAGS.items():
        value = getattr(args, dest, _DEFAULTS[dest])
        if param not in accepted:
            if flag_given(args, dest, defaults) and dest != "seed":
                ignored.append(_option(dest))
            continue
        if value is None:
            continue
        if dest == "block_size":
            value = fit_block_size(value, attack_ndim(name))
        params[param] = value
    if ignored:
        warnings.warn(
            f"flag{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} "
            f"{'have' if len(ignored) > 1 else 'has'} no effect with attack {name!r}.",
            UserWarning,
            stacklevel=2,
        )
    return name, params


def data_config_from_args(args: argparse.Namespace, preprocessing: Preprocessing | None = None) -> DataConfig:
    """The preprocessing configuration (window, spacing, ROI, augmentation) from the seed's data flags.

    Args:
        args: the parsed flags (``--a_min`` ... ``--roi_z``, ``--RandFlipd_prob`` ..., ``--dataset``).
        preprocessing: a catalogue model's own preprocessing; its window, spacing and ROI replace the seed's
            defaults, and flags given on the command line still override them.

    Raises:
        ValueError: a value out of range (the message names the setting).
    """
    from SpectrumAttackLib.data.transforms import DataConfig

    def pick(dest: str, own: Any) -> Any:
        return getattr(args, dest) if preprocessing is None or flag_given(args, dest) else own

    spacing = preprocessing.spacing_mm if preprocessing is not None else (None,) * 3
    roi = preprocessing.roi if preprocessing is not None else (None,) * 3
    check_choice("--dataset", args.dataset or "btcv", ("btcv", "acdc"))
    return DataConfig(
        a_min=pick("a_min", getattr(preprocessing, "a_min", None)),
        a_max=pick("a_max", getattr(preprocessing, "a_max", None)),
        b_min=pick("b_min", getattr(preprocessing, "b_min", None)),
        b_max=pick("b_max", getattr(preprocessing, "b_max", None)),
        spacing=(pick("space_x", spacing[0]), pick("space_y", spacing[1]), pick("space_z", spacing[2])),
        roi=(pick("roi_x", roi[0]), pick("roi_y", roi[1]), pick("roi_z", roi[2])),
        flip_prob=args.RandFlipd_prob,
        rotate90_prob=args.RandRotate90d_prob,
        scale_intensity_prob=args.RandScaleIntensityd_prob,
        shift_intensity_prob=args.RandShiftIntensityd_prob,
        dataset=args.dataset or "btcv",
    )


def model_build_args(
    args: argparse.Namespace, architecture: str | None = None
) -> tuple[str | None, dict[str, Any]]:
    """``(architecture, build_model keywords)`` from the model flags; architecture ``None`` without ``--model_name``.

    ``architecture`` replaces ``--model_name`` (``transfer`` names one per model).

    The keywords hold what the architecture uses: ``in_channels``, ``spatial_dims``, ``dropout_rate`` and ``roi``
    always; ``feature_size``, ``norm_name`` (UNETR, Swin-UNETR); the ViT sizes and ``pos_embed`` (UNETR);
    ``dropout_path_rate`` and ``use_checkpoint`` (Swin-UNETR); ``channels``, ``strides`` and ``num_res_units``
    (UNet, only when given). ``--res_block`` / ``--conv_block`` are not passed: the reference built UNETR with
    both on whatever the flags said, and so does :func:`~SpectrumAttackLib.models.build_model`.

    Raises:
        ValueError: unknown ``--model_name``; Swin-UNETR ``--feature_size`` not a multiple of 12.
    """
    if architecture is None:
        architecture = None if args.model_name in (None, "None") else args.model_name
    if architecture is not None:
        check_choice("--model_name", architecture, ("unet", "unet-r", "swin-unetr"))
    if architecture == "swin-unetr" and args.feature_size % 12:
        raise ValueError(f"--feature_size must be a multiple of 12 for swin-unetr, got {args.feature_size!r}.")
    build: dict[str, Any] = {
        "in_channels": args.in_channels,
        "spatial_dims": args.spatial_dims,
        "dropout_rate": args.dropout_rate,
        "roi": (args.roi_x, args.roi_y, args.roi_z),
    }
    if architecture in ("unet-r", "swin-unetr"):
        build.update(feature_size=args.feature_size, norm_name=args.norm_name)
    if architecture == "unet-r":
        build.update(hidden_size=args.hidden_size, mlp_dim=args.mlp_dim, num_heads=args.num_heads,
                     pos_embed=args.pos_embed)
    if architecture == "swin-unetr":
        build.update(dropout_path_rate=args.dropout_path_rate, use_checkpoint=args.use_checkpoint)
    if architecture == "unet":
        if args.unet_channels is not None:
            build["channels"] = tuple(args.unet_channels)
        if args.unet_strides is not None:
            build["strides"] = tuple(args.unet_strides)
        if args.num_res_units is not None:
            build["num_res_units"] = args.num_res_units
    return architecture, build


def model_from_args(
    args: argparse.Namespace, device: torch.device | str, spec: str | None = None, architecture: str | None = None,
    nnunet_allowed: bool = False,
) -> LoadedModel:
    """Load the model named by ``--model`` (or ``spec``), or by ``--model_name`` + ``--pretrained_path``.

    ``--model`` is a catalogue name or a model file (a checkpoint then takes its architecture from
    ``--model_name``; TorchScript files, MONAI bundle folders and nnU-Net v2 trained-model folders describe
    themselves; ``--folds``, ``--checkpoint`` and ``--mirroring`` apply to the latter). Without ``--model``,
    ``--model_name`` picks the architecture and ``--pretrained_path`` the checkpoint. The architecture's sizes
    (:func:`model_build_args`) and ``--out_channels`` are passed to the builder. For a catalogue model, a
    ``--model_name`` or ``--out_channels`` given on the command line must agree with the catalogue.

    Args:
        args: the parsed flags.
        device: where to load the model.
        spec: a model to load instead of ``--model`` (used by ``transfer`` for each of ``--models``).
        architecture: replaces ``--model_name`` for ``spec``.
        nnunet_allowed: whether the command runs nnU-Net folders with nnU-Net's own inference (``attack``;
            the others run the seed's MONAI pipeline and refuse them).

    Raises:
        ValueError: no model named; ``--use_pretrained`` without ``--pretrained_path``; Swin-UNETR
            ``--feature_size`` not a multiple of 12; class count or architecture not matching the checkpoint; a
            probe forward (:func:`~SpectrumAttackLib.pipeline.probe.probe_model`) that fails or gives another
            number of channels than the classes stated; a bundle that would run code without
            ``--trust_model_code``.
        FileNotFoundError: the checkpoint does not exist.
    """
    from SpectrumAttackLib.models import load_model
    from SpectrumAttackLib.models.nnunet import is_nnunet_folder as spec_is_nnunet

    architecture, build = model_build_args(args, architecture)
    if args.use_pretrained and not args.pretrained_path and not (spec or args.model):
        raise ValueError("--pretrained_path must be a checkpoint file when --use_pretrained is given, got ''.")
    spec = spec or args.model
    if not spec:
        if architecture is None:
            raise ValueError("--model_name must be one of 'unet', 'unet-r', 'swin-unetr' (or give --model), "
                             "got 'None'.")
        if not args.pretrained_path:
            raise ValueError("--pretrained_path must be a checkpoint file (or give --model), got ''.")
        spec = args.pretrained_path
    nnunet = {"folds": args.folds, "checkpoint": args.checkpoint, "mirroring": args.mirroring or None}
    nnunet = {k: v for k, v in nnunet.items() if v is not None}
    if nnunet and not spec_is_nnunet(spec):
        raise ValueError(f"--{' / --'.join(nnunet)} apply to nnU-Net model folders only, got --model {spec!r}.")
    if nnunet or spec_is_nnunet(spec):
        if not nnunet_allowed:
            raise ValueError(f"--model must not be an nnU-Net model folder for this command (it runs the seed's "
                             f"MONAI preprocessing); attack it with `spectrum-attack attack`, got {spec!r}.")
        return load_model(spec, device, **nnunet)
    from pathlib import Path

    from SpectrumAttackLib.models.checkpoints import is_torchscript

    file = Path(spec).expanduser()
    scripted = file.is_file() and is_torchscript(file)
    if scripted:  # it describes itself: pass only what the user set
        build = {k: v for k, v in build.items() if any(flag_given(args, f) for f in _BUILD_FLAGS[k])}
        architecture = architecture if flag_given(args, "model_name") else None
    # TorchScript files and bundles state their classes: the seed's default --out_channels 14 must not override
    num_classes = None if (scripted or file.is_dir()) and not flag_given(args, "out_channels") else args.out_channels
    loaded = load_model(spec, device, architecture=architecture, num_classes=num_classes,
                        trust_code=args.trust_model_code, **build)
    entry = loaded.entry
    if flag_given(args, "out_channels") and entry.num_classes != args.out_channels:
        raise ValueError(f"--out_channels must match the {entry.num_classes} classes of model {entry.name!r}, "
                         f"got {args.out_channels!r}.")
    if architecture is not None and entry.architecture in ("unet", "unet-r", "swin-unetr") \
            and entry.architecture != architecture:
        raise ValueError(f"--model_name must match the architecture of model {entry.name!r} "
                         f"({entry.architecture!r}), got {architecture!r}.")
    from SpectrumAttackLib.pipeline.probe import probe_model

    probe_model(loaded.model, entry.num_classes, entry.preprocessing.roi, name=f"--model {spec}")
    return loaded
