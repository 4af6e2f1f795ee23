"""One entry point for every kind of model: catalogue name, checkpoint, TorchScript file, MONAI bundle or nnU-Net v2
trained-model folder.

Example:
    >>> loaded = load_model("unet-btcv-3mm", "cpu")
    >>> loaded.entry.class_names[1], loaded.model.training
    ('spleen', False)
    >>> loaded = load_model("model_best.pt", architecture="unet-r", num_classes=14, roi=(96, 96, 96))
    >>> loaded = load_model("nnUNet_results/Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres", folds=[0, 1])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.io.hashing import sha256_file
from SpectrumAttackLib.models.catalogue import ARCHITECTURES, ModelEntry, Preprocessing, get_entry
from SpectrumAttackLib.models.checkpoints import LoadReport, load_checkpoint
from SpectrumAttackLib.models.factory import build_model
from SpectrumAttackLib.models.nnunet import is_nnunet_folder, load_nnunet
from SpectrumAttackLib.models.user_models import (
    is_bundle,
    is_torchscript,
    load_bundle,
    load_torchscript,
    synthesise_entry,
)
from SpectrumAttackLib.runtime import resolve_device

__all__ = ["LoadedModel", "load_model", "weights_sha256"]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".ts", ".bin")


@dataclass
class LoadedModel:
    """A model ready for inference and attacks.

    Attributes:
        model: the network in eval mode on the requested device; maps ``[B, C, H, W, D]`` images in [0, 1] to
            logits ``[B, num_classes, H, W, D]``.
        entry: its catalogue entry (synthesised for files: classes ``class_0``... unless the file names them).
        report: what checkpoint loading did; None for TorchScript models.
    """

    model: nn.Module
    entry: ModelEntry
    report: LoadReport | None = None

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter or buffer (CPU for a model without tensors)."""
        for tensor in (*self.model.parameters(), *self.model.buffers()):
            return tensor.device
        return torch.device("cpu")


def _load_catalogue_model(entry: ModelEntry) -> tuple[nn.Module, LoadReport]:
    path = entry.weights_path
    if not path.is_file():
        raise FileNotFoundError(
            f"weights of catalogue model {entry.name!r} not found at {path}. They ship with SpectrumAttack in "
            f"Resources/{entry.weights}: update the extension or the source checkout, or set "
            f"SPECTRUMATTACK_RESOURCES to a folder holding models.json and {entry.weights}. "
            f"How they were made: {entry.provenance or 'see the catalogue entry'}"
        )
    if entry.sha256:
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ValueError(
                f"weights of catalogue model {entry.name!r} must have sha256 {entry.sha256}, got {actual} for "
                f"{path} (corrupt or from another version)."
            )
    arguments = {"roi": entry.preprocessing.roi, **entry.arguments}
    model = build_model(entry.architecture, entry.num_classes, **arguments)
    return model, load_checkpoint(model, path, strict=True)


def _default_preprocessing(preprocessing: Preprocessing | None, build_kwargs: dict[str, Any]) -> Preprocessing:
    if preprocessing is not None:
        return preprocessing
    roi = build_kwargs.get("roi", build_kwargs.get("img_size"))
    if roi is None:
        return Preprocessing()
    return Preprocessing(roi=tuple(int(v) for v in ((roi,) * 3 if isinstance(roi, int) else roi)))


def load_model(
    spec: str | os.PathLike,
    device: str | torch.device = "auto",
    *,
    architecture: str | None = None,
    num_classes: int | None = None,
    preprocessing: Preprocessing | None = None,
    trust_code: bool = False,
    folds: Sequence[int | str] | int | str | None = None,
    checkpoint: str | None = None,
    mirroring: bool | None = None,
    **build_kwargs: Any,
) -> LoadedModel:
    """Load a model by catalogue name or from a file or folder.

    Args:
        spec: a catalogue name (``"unet-btcv-3mm"``); a checkpoint file (``.pt``/``.pth``, needs
            ``architecture`` and ``num_classes``); a TorchScript file; a MONAI bundle folder; or an nnU-Net v2
            trained-model folder (``<Trainer>__<Plans>__<configuration>/``, see
            :func:`SpectrumAttackLib.models.nnunet.load_nnunet`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (see :func:`SpectrumAttackLib.runtime.resolve_device`).
        architecture: ``"unet"``, ``"unet-r"`` or ``"swin-unetr"`` for checkpoints (the seed's ``--model_name``).
        num_classes: output channels incl. background (``--out_channels``) for checkpoints; optional for
            TorchScript files and bundles whose metadata states it.
        preprocessing: spacing, window and ROI for files; default the seed's (1.5×1.5×2 mm, −175..250 HU → 0..1,
            96³), with the ROI taken from ``roi`` when given. Catalogue models use their own.
        trust_code: let a MONAI bundle's config run its Python code (``$`` expressions, any ``_target_``); by
            default only MONAI network classes with literal arguments are built (``--trust_model_code``).
        folds: nnU-Net folds to ensemble (logits averaged); default every fold with the checkpoint.
        checkpoint: nnU-Net checkpoint, ``"final"`` (default) or ``"best"``.
        mirroring: nnU-Net's test-time mirroring in every forward pass (default off).
        build_kwargs: :func:`build_model` keywords for checkpoints (``roi``, ``feature_size``, ``channels``...).

    Returns:
        A :class:`LoadedModel` in eval mode on ``device``.

    Raises:
        FileNotFoundError: a missing file, or a catalogue model whose weights file is absent (says how to get it).
        ValueError: unknown catalogue name; a checkpoint without ``architecture``/``num_classes``; a checkpoint of
            another architecture or class count; a catalogue weights file whose sha256 does not match;
            ``folds``/``checkpoint``/``mirroring`` for a model that is not an nnU-Net folder.
        ImportError: an nnU-Net folder without the ``nnunet`` extra installed.
    """
    target = resolve_device(device)
    path = Path(spec).expanduser()
    report: LoadReport | None = None
    nnunet_options = {"folds": folds, "checkpoint": checkpoint, "mirroring": mirroring}
    if path.is_dir() and not is_bundle(path) and is_nnunet_folder(path):
        model, entry = load_nnunet(path, folds=folds, checkpoint=checkpoint or "final", mirroring=bool(mirroring))
        return LoadedModel(model=model.to(target).eval(), entry=entry, report=None)
    given = [name for name, value in nnunet_options.items() if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)} must be left out for {str(spec)!r}: they apply to nnU-Net model "
                         f"folders only.")
    if path.exists():
        if path.is_dir():
            if not is_bundle(path):
                raise ValueError(
                    f"model must be a MONAI bundle folder (with configs/metadata.json) or an nnU-Net v2 trained-model "
                    f"folder (plans.json, dataset.json, fold_<k>/), got {str(path)!r}."
                )
            model, entry, report = load_bundle(
                path, architecture=architecture, num_classes=num_classes, preprocessing=preprocessing,
                trust_code=trust_code, **build_kwargs,
            )
        elif is_torchscript(path):
            unused = sorted(set(build_kwargs) - {"roi", "img_size"}) + (["architecture"] if architecture else [])
            if unused:
                warnings.warn(f"{', '.join(unused)} has no effect on the TorchScript model {path.name}.", stacklevel=2)
            given_roi = "roi" in build_kwargs or "img_size" in build_kwargs
            if preprocessing is None and given_roi:
                preprocessing = _default_preprocessing(None, build_kwargs)
            model, entry = load_torchscript(path, num_classes=num_classes, preprocessing=preprocessing)
        else:
            if architecture is None or num_classes is None:
                raise ValueError(
                    f"architecture must be one of {', '.join(map(repr, ARCHITECTURES))} and num_classes must be "
                    f"given for checkpoint {str(path)!r} (--model_name / --out_channels), got architecture="
                    f"{architecture!r}, num_classes={num_classes!r}."
                )
            check_choice("architecture", architecture, ARCHITECTURES)
            model = build_model(architecture, num_classes, **build_kwargs)
            report = load_checkpoint(model, path)
            entry = synthesise_entry(
                path.name, architecture, num_classes, path, arguments=build_kwargs,
                preprocessing=_default_preprocessing(preprocessing, build_kwargs), provenance=f"checkpoint {path}",
            )  # fmt: skip
    elif path.suffix.lower() in _CHECKPOINT_SUFFIXES or os.sep in str(spec):
        raise FileNotFoundError(f"model file must exist, got {str(path)!r} (no such file).")
    else:
        entry = get_entry(str(spec))
        model, report = _load_catalogue_model(entry)
    model = model.to(target).eval()
    return LoadedModel(model=model, entry=entry, report=report)


def weights_sha256(loaded: LoadedModel) -> str | None:
    """sha256 of the model's weights file, or None for a folder (bundle, nnU-Net) or a model without a file."""
    path = Path(getattr(loaded.entry, "weights_path", "") or "")
    return sha256_file(path) if path.is_file() else None
