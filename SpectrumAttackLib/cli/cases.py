"""The case source of the ``attack``/``evaluate``/``transfer``/``audit`` subcommands: the cases of a split, or one
image.

Cases come from ``--data_dir``/``--json_list`` (the seed's split file) or from ``--image`` (NIfTI or NRRD) with an
optional ``--label``. Every file is checked to exist and to have a readable header before any work starts; the
cases themselves are built by :class:`SpectrumAttackLib.pipeline.case.Case` (the seed's MONAI evaluation
pipeline for a split, the geometry mapping for ``--image``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import nibabel as nib

from SpectrumAttackLib.data.datalist import load_datalist
from SpectrumAttackLib.io.volumes import volume_format
from SpectrumAttackLib.pipeline.case import PARAM_KEYS, case_name, dataset_param

__all__ = ["input_files", "load_split", "split_key"]


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
                _check_header(path, dataset_param(key, path, name))
            if len(paths) == 1:
                case[PARAM_KEYS[key]] = dataset_param(key, paths[0], name)
        if name in seen:
            raise ValueError(f"--json_list must list each image once, got {name!r} twice ({seen[name]}).")
        seen[name] = str(case["image"])
    return cases


def input_files(args: argparse.Namespace, entries: list[dict[str, Any]]) -> dict[str, str]:
    """Every input file of the run, name → path (``--image``/``--label``, or each case's files), for the staged
    writer's check that no output replaces an input."""
    if getattr(args, "image", None):
        return {flag: entry[key] for entry in entries for flag, key in (("--image", "image"), ("--label", "label"))
                if isinstance(entry.get(key), str)}
    files = {}
    for entry in entries:
        for key in ("image", "label"):
            for path in [entry.get(key)] if isinstance(entry.get(key), str) else list(entry.get(key) or []):
                files[f"case file {Path(path).name!r}"] = path
    return files


def _check_header(path: str, name: str) -> None:
    """Exists, has a volume ending and (NIfTI) a readable header; the wording of ``read_volume``."""
    kind = volume_format(path, name)
    if Path(path).is_dir():
        raise ValueError(f"{name} must be a volume file, got {path!r} (a folder).")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{name} must be an existing volume file, got {path!r} (no such file).")
    if kind == "nrrd":
        return  # read in full when the case is built
    try:
        nib.load(path)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise ValueError(f"{name} must be a readable NIFTI volume, got {path!r} "
                         f"({str(exc).strip() or type(exc).__name__}).") from None
