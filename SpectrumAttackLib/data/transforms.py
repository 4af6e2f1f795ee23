"""The seed's MONAI preprocessing pipelines (seed-algorithms §9), on current MONAI.

``eval_transforms``: LoadImaged → EnsureChannelFirstd → image/label shape check → Orientationd RAS → Spacingd
(bilinear / nearest) → ScaleIntensityRanged (clip) → CropForegroundd (source image) [→ ResizeWithPadOrCropd to the
ROI for ACDC] → labels as int64.

``train_transforms`` adds, after the foreground crop: SpatialPadd to the ROI, RandCropByPosNegLabeld (pos 1, neg 1,
``num_samples`` crops), RandFlipd on axes 0, 1, 2, RandRotate90d (max_k 3), RandScaleIntensityd (factors 0.1) and
RandShiftIntensityd (offsets 0.1).

Departures from the seed, on purpose: ``AddChanneld`` (removed from MONAI) is ``EnsureChannelFirstd``; ACDC's resize
comes **after** intensity scaling and the foreground crop in both pipelines (§13 item 14: resizing first let volumes
shrink below the tile size); an image and a label of different shapes raise ``ValueError`` instead of being
resampled silently; the random pipeline can be seeded (§13 item 24).

Example:
    >>> cfg = DataConfig(spacing=(3.0, 3.0, 3.0), roi=(64, 64, 64))
    >>> case = eval_transforms(cfg)({"image": "imagesTr/img0001.nii.gz", "label": "labelsTr/label0001.nii.gz"})
    >>> case["image"].shape[0], case["label"].dtype
    (1, torch.int64)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    ResizeWithPadOrCropd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialPadd,
)

from SpectrumAttackLib.checks import check_choice, check_int, check_range

__all__ = ["DATASETS", "CheckShapesd", "DataConfig", "eval_transforms", "train_transforms"]

#: The seed's ``--dataset`` values and their class counts (background included).
DATASETS: dict[str, int] = {"btcv": 14, "acdc": 4}


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing and augmentation settings; defaults are the seed's (``seed-flags.md``).

    Attributes:
        a_min, a_max: input intensity window (HU for CT; ``--a_min``/``--a_max``), a_min < a_max. -175, 250.
        b_min, b_max: range the window maps to (``--b_min``/``--b_max``). 0, 1.
        spacing: target voxel size (x, y, z) in mm (``--space_x/y/z``), each > 0. (1.5, 1.5, 2.0).
        roi: crop / tile size (``--roi_x/y/z``) in voxels. (96, 96, 96).
        flip_prob: ``--RandFlipd_prob``, per axis. 0.2.
        rotate90_prob: ``--RandRotate90d_prob``. 0.2.
        scale_intensity_prob: ``--RandScaleIntensityd_prob``. 0.1.
        shift_intensity_prob: ``--RandShiftIntensityd_prob``. 0.1.
        dataset: ``"btcv"`` (14 classes) or ``"acdc"`` (4 classes; adds a resize to ``roi``). ``"btcv"``.
        num_samples: random crops per volume in training (the seed's 4).
    """

    a_min: float = -175.0
    a_max: float = 250.0
    b_min: float = 0.0
    b_max: float = 1.0
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.0)
    roi: tuple[int, int, int] = (96, 96, 96)
    flip_prob: float = 0.2
    rotate90_prob: float = 0.2
    scale_intensity_prob: float = 0.1
    shift_intensity_prob: float = 0.1
    dataset: str = "btcv"
    num_samples: int = 4

    def __post_init__(self) -> None:
        for name in ("a_min", "a_max", "b_min", "b_max"):
            object.__setattr__(self, name, check_range(name, getattr(self, name)))
        if self.a_max <= self.a_min:
            raise ValueError(f"a_max must be > a_min ({self.a_min:g}), got {self.a_max!r}.")
        spacing = tuple(self.spacing) if isinstance(self.spacing, Sequence) else (self.spacing,) * 3
        if len(spacing) != 3:
            raise ValueError(f"spacing must have 3 values (x, y, z) in mm, got {self.spacing!r}.")
        spacing = tuple(check_range("spacing", v, 0.0, None, low_inclusive=False) for v in spacing)
        roi = tuple(self.roi) if isinstance(self.roi, Sequence) else (self.roi,) * 3
        if len(roi) != 3:
            raise ValueError(f"roi must have 3 values (x, y, z) in voxels, got {self.roi!r}.")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "roi", tuple(check_int("roi", v, 1) for v in roi))
        for name in ("flip_prob", "rotate90_prob", "scale_intensity_prob", "shift_intensity_prob"):
            object.__setattr__(self, name, check_range(name, getattr(self, name), 0.0, 1.0))
        check_choice("dataset", self.dataset, DATASETS)
        object.__setattr__(self, "num_samples", check_int("num_samples", self.num_samples, 1))

    @property
    def num_classes(self) -> int:
        """Classes of the dataset, background included."""
        return DATASETS[self.dataset]


class CheckShapesd:
    """Raise ``ValueError`` when the label's spatial shape differs from the image's (channel-first arrays)."""

    def __init__(self, image_key: str = "image", label_key: str = "label") -> None:
        self.image_key, self.label_key = image_key, label_key

    def __repr__(self) -> str:
        return f"CheckShapesd({self.image_key!r}, {self.label_key!r})"

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        if self.label_key in data:
            image, label = data[self.image_key], data[self.label_key]
            if tuple(image.shape[1:]) != tuple(label.shape[1:]):
                name = getattr(label, "meta", {}).get("filename_or_obj", "the label")
                raise ValueError(
                    f"label must have the image's spatial shape {tuple(image.shape[1:])}, got "
                    f"{tuple(label.shape[1:])} for {name}."
                )
        return data


def _load_images(keys: tuple[str, ...]) -> LoadImaged:
    """LoadImaged for NIfTI datasets (the seed's).

    MONAI instantiates every reader it knows; with pydicom installed (the sample data needs it) but no GPU
    decoder, its NvImgCodecPydicomReader warns (and logs) on every construction, which says nothing about NIfTI
    input.
    """
    plugin_log = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = plugin_log.level
    try:
        plugin_log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader", category=UserWarning)
            return LoadImaged(keys=keys, reader="NibabelReader", image_only=True)
    finally:
        plugin_log.setLevel(level)


def _common(cfg: DataConfig, keys: tuple[str, ...]) -> list:
    """Deterministic steps shared by both pipelines (cached by CacheDataset)."""
    modes = ("bilinear", "nearest")[: len(keys)]
    steps = [
        _load_images(keys),
        EnsureChannelFirstd(keys=keys),
        CheckShapesd(),
        Orientationd(keys=keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
        Spacingd(keys=keys, pixdim=cfg.spacing, mode=modes),
        ScaleIntensityRanged(
            keys="image", a_min=cfg.a_min, a_max=cfg.a_max, b_min=cfg.b_min, b_max=cfg.b_max, clip=True
        ),
        CropForegroundd(keys=keys, source_key="image", allow_smaller=True),
    ]
    if cfg.dataset == "acdc":
        steps.append(ResizeWithPadOrCropd(keys=keys, spatial_size=cfg.roi))
    return steps


def _keys(with_label: bool) -> tuple[str, ...]:
    return ("image", "label") if with_label else ("image",)


def eval_transforms(cfg: DataConfig, *, with_label: bool = True) -> Compose:
    """Validation / inference pipeline: file paths in, ``image`` ``[1, H, W, D]`` float in [b_min, b_max] and
    ``label`` ``[1, H, W, D]`` int64 out (MetaTensors, RAS, ``cfg.spacing``).

    Args:
        cfg: the settings.
        with_label: whether the dicts carry a ``label`` path. Default True.

    Raises:
        ValueError: (when applied) the image and label shapes differ; MONAI's Compose raises it as the cause of a
            ``RuntimeError("applying transform CheckShapesd(...)")``.
    """
    keys = _keys(with_label)
    steps = _common(cfg, keys)
    if with_label:
        steps.append(EnsureTyped(keys="label", dtype=torch.int64))
    return Compose(steps)


def train_transforms(cfg: DataConfig, *, seed: int | None = None) -> Compose:
    """Training pipeline: :func:`eval_transforms`' steps, then padding to the ROI, ``cfg.num_samples`` random
    crops of ``cfg.roi`` (half centred on foreground) and the seed's augmentations.

    Args:
        cfg: the settings.
        seed: seeds the random transforms for reproducible crops (None: MONAI's default state).

    Returns:
        A Compose that maps one case dict to a list of ``cfg.num_samples`` dicts (``image`` ``[1, *roi]``,
        ``label`` ``[1, *roi]`` int64).
    """
    keys = _keys(True)
    steps = [
        *_common(cfg, keys),
        SpatialPadd(keys=keys, spatial_size=cfg.roi),
        RandCropByPosNegLabeld(
            keys=keys,
            label_key="label",
            spatial_size=cfg.roi,
            pos=1,
            neg=1,
            num_samples=cfg.num_samples,
            image_key="image",
            image_threshold=0,
        ),
        RandFlipd(keys=keys, prob=cfg.flip_prob, spatial_axis=0),
        RandFlipd(keys=keys, prob=cfg.flip_prob, spatial_axis=1),
        RandFlipd(keys=keys, prob=cfg.flip_prob, spatial_axis=2),
        RandRotate90d(keys=keys, prob=cfg.rotate90_prob, max_k=3),
        RandScaleIntensityd(keys="image", factors=0.1, prob=cfg.scale_intensity_prob),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=cfg.shift_intensity_prob),
        EnsureTyped(keys="label", dtype=torch.int64),
    ]
    pipeline = Compose(steps)
    if seed is not None:
        pipeline.set_random_state(seed=seed)
    return pipeline
