"""The case source of the ``attack``/``evaluate``/``transfer`` subcommands: the cases of a split, or one image.

Cases come from ``--data_dir``/``--json_list`` (the seed's split file) or from ``--image`` (NIfTI or NRRD) with an
optional ``--label``: one case named after the file, written exactly as a dataset case. Before MONAI's evaluation
pipeline touches a case, its files are read and checked by :mod:`SpectrumAttackLib.pipeline.validate` (the
checks every interface runs): readable, 3-D, finite, labels integer, non-negative, on the image's grid and within
the model's classes. Images that do not look like the model's modality get a warning.

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
from SpectrumAttackLib.io.volumes import volume_format
from SpectrumAttackLib.pipeline.validate import read_image, read_labels, warn_if_outside_window

__all__ = ["Case", "case_transform", "class_table", "load_case", "load_split", "split_key"]

#: keys added to a split entry naming the parameter of its files in messages (removed before the transforms).
_PARAM_KEYS = {"image": "image_param", "label": "label_param"}


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


def _single_image(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The one case of ``--image`` (and ``--label``)."""
    for flag in ("data_dir", "json_list"):
        if getattr(args, flag, None) not in (None, "", "None"):
            raise ValueError(f"--image must not be combined with --{flag} (one image replaces the split), got both.")
    entry: dict[str, Any] = {"image": str(Path(args.image).expanduser()), "image_param": "--image"}
    _check_header(entry["image"], "--image")
    if getattr(args, "label", None):
        entry.update(label=str(Path(args.label).expanduser()), label_param="--label")
        _check_header(entry["label"], "--label")
    return [entry]


def load_split(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The cases: ``--image`` (with ``--label``) as one case, else those of ``--json_list`` in ``--data_dir``
    (validation list unless ``--gen_train_adv_mode``).

    Every image and label file is checked to exist and to have a readable NIfTI/NRRD header, so that a missing or
    broken file is reported before any work starts.

    Raises:
        ValueError: flags not given or combined wrongly, an unreadable file, no list of that name, duplicate names.
        FileNotFoundError: the folder, the split file, ``--image``/``--label`` or a listed file does not exist.
    """
    if getattr(args, "label", None) and not getattr(args, "image", None):
        raise ValueError(f"--label must come with --image, got --label {args.label!r} alone.")
    if getattr(args, "image", None):
        return _single_image(args)
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
        name = case_name(case["image"] if isinstance(case["image"], str) else case["image"][0])
        for key in ("image", "label"):
            paths = [case[key]] if isinstance(case.get(key), str) else case.get(key) or []
            for path in paths:
                _check_header(path, _dataset_param(key, path, name))
            if len(paths) == 1:
                case[_PARAM_KEYS[key]] = _dataset_param(key, paths[0], name)
        if name in seen:
            raise ValueError(f"--json_list must list each image once, got {name!r} twice ({seen[name]}).")
        seen[name] = str(case["image"])
    return cases


def _dataset_param(key: str, path: str, case: str) -> str:
    """How messages name a file of a split: ``--data_dir label label0002.nii.gz (case img0002)``."""
    return f"--data_dir {key} {Path(path).name} (case {case})"


def _check_header(path: str, name: str) -> None:
    """Exists, has a volume ending and (NIfTI) a readable header; the wording of ``read_volume``."""
    kind = volume_format(path, name)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{name} must be an existing volume file, got {path!r} (no such file).")
    if kind == "nrrd":
        return  # read in full by load_case
    try:
        nib.load(path)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise ValueError(f"{name} must be a readable NIFTI volume, got {path!r} "
                         f"({str(exc).strip() or type(exc).__name__}).") from None


def case_transform(cfg: Any, entries: Sequence[Mapping[str, Any]]) -> Callable[[dict], Mapping[str, Any]]:
    """MONAI's evaluation pipeline for these cases: with labels when every case has one."""
    from SpectrumAttackLib.data.transforms import eval_transforms

    return eval_transforms(cfg, with_label=all(entry.get("label") for entry in entries))


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return exc


def load_case(transform: Callable[[dict], Mapping[str, Any]], entry: Mapping[str, Any], num_classes: int,
              window: tuple[float, float]) -> Case:
    """Check one case's files (:mod:`SpectrumAttackLib.pipeline.validate`), then run the evaluation pipeline.

    Args:
        transform: from :func:`case_transform`.
        entry: one entry of :func:`load_split`.
        num_classes: the model's classes: label values must lie in ``[0, num_classes)``.
        window: the model's ``(a_min, a_max)``, for the modality warning.

    Raises:
        ValueError: a file that cannot be read; an image that is not a finite 3-D volume; labels that are not
            integer class ids in range on the image's grid (the message names the file).
    """
    entry = dict(entry)
    params = {key: entry.pop(param, None) for key, param in _PARAM_KEYS.items()}
    image_path = entry["image"] if isinstance(entry["image"], str) else entry["image"][0]
    name = case_name(image_path)
    if isinstance(entry["image"], str):
        image_param = params["image"] or _dataset_param("image", image_path, name)
        volume = read_image(image_path, image_param)
        warn_if_outside_window(image_param, volume.array, *window)
        if isinstance(entry.get("label"), str):
            read_labels(entry["label"], params["label"] or _dataset_param("label", entry["label"], name),
                        volume.array.shape, num_classes)
        del volume
    try:
        data = transform(entry)
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


def class_table(class_names: Sequence[str], class_colours: Sequence[Sequence[int]]) -> tuple[list[str], list]:
    """Class names and RGB colours for reports: the model's own, or BTCV's for an unnamed 14-class model."""
    names, colours = list(class_names), [tuple(c) for c in class_colours]
    if len(names) == len(BTCV_CLASSES) and all(n == f"class_{i}" for i, n in enumerate(names)):
        return list(BTCV_CLASSES), list(BTCV_COLOURS)
    return names, colours
