"""The seed's flags become Lib objects here, and only here: attack parameters, a data configuration, a loaded model.

Units: ``--eps`` and ``--std`` stay on the seed's 0–255 scale (the attacks convert them once); ``--alpha`` is
used as given ([0, 1] intensity units); ``--block_size`` becomes a tuple of 2 (``-2d`` attacks) or 3 entries.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import attack_ndim, fit_block_size
from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.cli.args import ATTACK_FLAGS, check_choices, flag_default, flag_given, option_string
from SpectrumAttackLib.models.catalogue import ARCHITECTURES

if TYPE_CHECKING:
    import torch

    from SpectrumAttackLib.data.transforms import DataConfig
    from SpectrumAttackLib.models import LoadedModel
    from SpectrumAttackLib.models.catalogue import Preprocessing

__all__ = ["attack_params_from_args", "data_config_from_args", "model_build_args", "model_from_args"]

#: build_model keyword → the flags that set it (a TorchScript file takes only those given on the command line).
_BUILD_FLAGS: dict[str, tuple[str, ...]] = {
    "in_channels": ("in_channels",), "spatial_dims": ("spatial_dims",), "dropout_rate": ("dropout_rate",),
    "roi": ("roi_x", "roi_y", "roi_z"), "feature_size": ("feature_size",), "norm_name": ("norm_name",),
    "hidden_size": ("hidden_size",), "mlp_dim": ("mlp_dim",), "num_heads": ("num_heads",),
    "pos_embed": ("pos_embed",), "dropout_path_rate": ("dropout_path_rate",), "use_checkpoint": ("use_checkpoint",),
    "channels": ("unet_channels",), "strides": ("unet_strides",), "num_res_units": ("num_res_units",),
    "init_filters": ("init_filters",),
}


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
        value = getattr(args, dest, flag_default(dest))
        if param not in accepted:
            if flag_given(args, dest, defaults) and dest != "seed":
                ignored.append(option_string(dest))
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
        check_choice("--model_name", architecture, ARCHITECTURES)
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
    if architecture == "segresnet" and args.init_filters is not None:
        build["init_filters"] = args.init_filters
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
            raise ValueError(f"--model_name must be one of {', '.join(map(repr, ARCHITECTURES))} (or give "
                             "--model), got 'None'.")
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
    if architecture is not None and entry.architecture in ARCHITECTURES \
            and entry.architecture != architecture:
        raise ValueError(f"--model_name must match the architecture of model {entry.name!r} "
                         f"({entry.architecture!r}), got {architecture!r}.")
    from SpectrumAttackLib.pipeline.probe import probe_model

    probe_model(loaded.model, entry.num_classes, entry.preprocessing.roi, name=f"--model {spec}")
    return loaded
