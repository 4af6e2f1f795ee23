"""Cases of a split, preprocessed with the seed's evaluation pipeline, for the ``attack``/``evaluate``/``transfer``
subcommands.

A :class:`Case` holds one volume in the model grid (after RAS orientation, resampling, the intensity window and
the foreground crop) together with the IJK→RAS matrix of that grid, taken from the MONAI ``MetaTensor`` after the
transforms, so that files written in this grid overlay the source image in any viewer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from SpectrumAttackLib.cli.adv_paths import case_name
from SpectrumAttackLib.data.btcv import BTCV_CLASSES, BTCV_COLOURS
from SpectrumAttackLib.data.datalist import load_datalist

__all__ = ["Case", "check_label_values", "class_table", "load_case", "load_split", "split_key"]


@dataclass(frozen=True)
class Case:
    """One preprocessed case.

    Attributes:
        name: the image file name without its ending (``img0001``).
        images: ``[1, 1, H, W, D]`` float32 in [b_min, b_max], on the CPU.
        labels: ``[1, 1, H, W, D]`` int64, or None for a case without labels.
        affine: ``[4, 4]`` float64 IJK→RAS matrix of the model grid (mm).
        spacing_mm: voxel size along H, W, D in mm.
        source: the image file.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    source: str


def split_key(args: argparse.Namespace) -> str:
    """``"training"`` with ``--gen_train_adv_mode``, else ``"validation"`` (the seed README's ``--gen_val_adv_mode``).

    Raises:
        ValueError: both flags given.
    """
    if getattr(args, "gen_train_adv_mode", False) and getattr(args, "gen_val_adv_mode", False):
        raise ValueError("--gen_train_adv_mode must not be combined with --gen_val_adv_mode, got both.")
    return "training" if getattr(args, "gen_train_adv_mode", False) else "validation"


def load_split(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The cases of ``--json_list`` in ``--data_dir`` (validation list unless ``--gen_train_adv_mode``).

    Every image and label file is checked to exist and to have a readable NIfTI/NRRD header, so that a broken
    file is reported before any work starts.

    Raises:
        ValueError: flags not given, an unreadable file, no list of that name, duplicate case names.
        FileNotFoundError: the folder, the split file or a listed file does not exist.
    """
    key = split_key(args)
    try:
        cases = load_datalist(args.data_dir, args.json_list, key)
    except ValueError as exc:
        if not str(exc).startswith("key must"):
            raise
        flag = "--gen_train_adv_mode" if key == "training" else "--gen_val_adv_mode (the default)"
        raise ValueError(f"--json_list must hold a non-empty {key!r} list for {flag}; {exc}") from None
    seen: dict[str, str] = {}
    for case in cases:
        for key in ("image", "label"):
            for path in [case[key]] if isinstance(case.get(key), str) else case.get(key) or []:
                _check_header(path, key)
        name = case_name(case["image"] if isinstance(case["image"], str) else case["image"][0])
        if name in seen:
            raise ValueError(f"--json_list must list each image once, got {name!r} twice ({seen[name]}).")
        seen[name] = str(case["image"])
    return cases


def _check_header(path: str, key: str) -> None:
    if path.endswith(".nrrd"):
        return  # read by MONAI's pipeline; its errors are unwrapped in load_case
    try:
        nib.load(path)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise ValueError(f"--data_dir must hold readable NIfTI files, got {key} {path!r} ({exc}).") from None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return exc


def load_case(transform: Callable[[dict], Mapping[str, Any]], entry: Mapping[str, Any]) -> Case:
    """Run the evaluation pipeline on one split entry.

    Raises:
        ValueError: the files cannot be read or the image and label shapes differ (the message names the case).
    """
    image_path = entry["image"] if isinstance(entry["image"], str) else entry["image"][0]
    name = case_name(image_path)
    try:
        data = transform(dict(entry))
    except Exception as exc:  # MONAI wraps every failure in "applying transform ..."; report the cause
        cause = _root_cause(exc)
        raise ValueError(f"case {name} must be readable and consistent: {str(cause).strip().splitlines()[0]}") \
            from None
    image = data["image"]
    affine = np.asarray(getattr(image, "affine", torch.eye(4)), dtype=np.float64)
    spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    labels = data.get("label")
    return Case(
        name=name,
        images=torch.as_tensor(image).float().unsqueeze(0).contiguous(),
        labels=None if labels is None else torch.as_tensor(labels).long().unsqueeze(0).contiguous(),
        affine=affine,
        spacing_mm=spacing,  # type: ignore[arg-type]
        source=str(Path(image_path)),
    )


def check_label_values(case: Case, num_classes: int) -> None:
    """Raise ``ValueError`` when the labels hold class ids the model does not have (``--out_channels``)."""
    if case.labels is None:
        return
    high = int(case.labels.max())
    if high >= num_classes:
        raise ValueError(f"--out_channels must exceed every label value: case {case.name} has label {high}, the "
                         f"model has {num_classes} classes.")


def class_table(class_names: Sequence[str], class_colours: Sequence[Sequence[int]]) -> tuple[list[str], list]:
    """Class names and RGB colours for reports: the model's own, or BTCV's for an unnamed 14-class model."""
    names, colours = list(class_names), [tuple(c) for c in class_colours]
    if len(names) == len(BTCV_CLASSES) and all(n == f"class_{i}" for i, n in enumerate(names)):
        return list(BTCV_CLASSES), list(BTCV_COLOURS)
    return names, colours
