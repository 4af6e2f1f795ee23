"""The one case type of the engine: one volume in the model grid, with its labels and the matrix of that grid.

A :class:`Case` is built in one of two explicit ways, one per way of getting a volume into the model grid:

- :meth:`Case.from_transforms`: the seed's MONAI evaluation pipeline (RAS orientation, resampling, the intensity
  window, the foreground crop) on a split entry. The dataset commands (``attack``, ``evaluate``, ``transfer``,
  ``audit`` over a split) use it; their files are written in this grid and ``evaluate`` reads them back in it.
- :meth:`Case.from_volume`: the geometry mapping of one volume given in its own grid
  (:mod:`SpectrumAttackLib.inference.geometry`, or an nnU-Net model's own preprocessing); the case keeps the
  mapping, so model-grid results go back to the input's grid and units. The Python API, ``--image``, ``demo``,
  the audit of one image, the Slicer logic and CLI module use it (through
  :func:`SpectrumAttackLib.workflows.single.prepare_case` or
  :func:`SpectrumAttackLib.workflows.robustness.volume_case`).

Before either strategy touches a file, it is read and checked by :mod:`SpectrumAttackLib.pipeline.validate`
(the checks every interface runs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from SpectrumAttackLib.data.btcv import BTCV_CLASSES, BTCV_COLOURS
from SpectrumAttackLib.pipeline.validate import read_image, read_labels, warn_if_outside_window

__all__ = [
    "PARAM_KEYS",
    "Case",
    "GeometryGrid",
    "ModelGridMapper",
    "case_name",
    "case_transform",
    "class_table",
    "dataset_param",
]

#: keys a split entry may carry to name the parameter of its files in messages (removed before the transforms).
PARAM_KEYS = {"image": "image_param", "label": "label_param"}


class ModelGridMapper(Protocol):
    """A way to map one volume given in its own grid to the model grid and back (:meth:`Case.from_volume`).

    :class:`GeometryGrid` (MONAI models) and :class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference`
    (nnU-Net's own preprocessing) implement it.
    """

    def to_model_grid(self, array: np.ndarray, affine: np.ndarray) -> tuple[torch.Tensor, Any]:
        """``([1, 1, H, W, D] float32 image in [b_min, b_max], mapping)``."""

    def labels_to_model_grid(self, labels: np.ndarray, mapping: Any) -> torch.Tensor:
        """``[1, 1, H, W, D]`` class ids on the model grid of ``mapping``."""


class GeometryGrid:
    """The geometry mapping of :mod:`SpectrumAttackLib.inference.geometry` for one preprocessing (orientation,
    spacing in mm, intensity window ``a_min``/``a_max`` in input units → ``b_min``/``b_max``)."""

    def __init__(self, *, spacing_mm: Sequence[float], a_min: float, a_max: float, b_min: float, b_max: float,
                 orientation: str = "RAS") -> None:
        self.settings = {"spacing_mm": tuple(spacing_mm), "a_min": a_min, "a_max": a_max, "b_min": b_min,
                         "b_max": b_max, "orientation": orientation}

    @classmethod
    def from_preprocessing(cls, preprocessing: Any) -> GeometryGrid:
        """From a catalogue ``Preprocessing`` (or a mapping with the same keys)."""
        def get(key: str) -> Any:
            return preprocessing[key] if isinstance(preprocessing, Mapping) else getattr(preprocessing, key)

        return cls(spacing_mm=get("spacing_mm"), a_min=get("a_min"), a_max=get("a_max"), b_min=get("b_min"),
                   b_max=get("b_max"), orientation=get("orientation"))

    def to_model_grid(self, array: np.ndarray, affine: np.ndarray) -> tuple[torch.Tensor, Any]:
        from SpectrumAttackLib.inference.geometry import to_model_grid

        return to_model_grid(array, affine, **self.settings)

    def labels_to_model_grid(self, labels: np.ndarray, mapping: Any) -> torch.Tensor:
        from SpectrumAttackLib.inference.geometry import labels_to_model_grid

        return labels_to_model_grid(labels, mapping)

    def from_model_grid(self, volume: Any, mapping: Any, *, mode: str) -> np.ndarray:
        from SpectrumAttackLib.inference.geometry import from_model_grid

        return from_model_grid(volume, mapping, mode=mode)


@dataclass(frozen=True)
class Case:
    """One case in the model grid.

    Attributes:
        name: the case's name (``img0001`` for ``imagesTr/img0001.nii.gz``).
        images: ``[1, 1, H, W, D]`` float32 in [b_min, b_max], on the CPU.
        labels: ``[1, 1, H, W, D]`` int64 class ids, or None for a case without labels.
        affine: ``[4, 4]`` float64 IJK→RAS matrix of the model grid (mm).
        spacing_mm: voxel size along H, W, D in mm.
        source: where the case comes from (a file path, or a description of an array).
        mapping: for :meth:`from_volume` cases, how the input grid maps to the model grid
            (:class:`~SpectrumAttackLib.inference.geometry.GridMapping` or nnU-Net's mapping); None for
            :meth:`from_transforms` cases, which live in the model grid only.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    source: str
    mapping: Any = None

    @classmethod
    def from_transforms(cls, transform: Callable[[dict], Mapping[str, Any]], entry: Mapping[str, Any],
                        num_classes: int, window: tuple[float, float]) -> Case:
        """Check one split entry's files (:mod:`SpectrumAttackLib.pipeline.validate`), then run the seed's MONAI
        evaluation pipeline on it.

        The model grid's IJK→RAS matrix is taken from the MONAI ``MetaTensor`` after the transforms, so that files
        written in this grid overlay the source image in any viewer.

        Args:
            transform: from :func:`case_transform`.
            entry: ``{"image": path, "label": path (optional)}``, plus optional ``image_param``/``label_param``
                naming the files in messages (``"--image"``).
            num_classes: the model's classes: label values must lie in ``[0, num_classes)``.
            window: the model's ``(a_min, a_max)``, for the modality warning.

        Raises:
            ValueError: a file that cannot be read; an image that is not a finite 3-D volume; labels that are not
                integer class ids in range on the image's grid (the message names the file).
        """
        entry = dict(entry)
        params = {key: entry.pop(param, None) for key, param in PARAM_KEYS.items()}
        image_path = entry["image"] if isinstance(entry["image"], str) else entry["image"][0]
        name = case_name(image_path)
        if isinstance(entry["image"], str):
            image_param = params["image"] or dataset_param("image", image_path, name)
            volume = read_image(image_path, image_param)
            warn_if_outside_window(image_param, volume.array, *window)
            if isinstance(entry.get("label"), str):
                read_labels(entry["label"], params["label"] or dataset_param("label", entry["label"], name),
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
        labels = data.get("label")
        return cls(
            name=name,
            images=torch.as_tensor(image).float().unsqueeze(0).contiguous(),
            labels=None if labels is None else torch.as_tensor(labels).long().unsqueeze(0).contiguous(),
            affine=affine,
            spacing_mm=tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)),  # type: ignore[arg-type]
            source=str(Path(image_path)),
        )

    @classmethod
    def from_volume(cls, array: np.ndarray, affine: np.ndarray, *, grid: ModelGridMapper,
                    labels: np.ndarray | None = None, name: str = "image", source: str = "") -> Case:
        """Map one checked volume in its own grid (and its labels) to the model grid with ``grid``.

        Args:
            array: ``[I, J, K]`` the volume in input units (HU for CT), already checked
                (:func:`~SpectrumAttackLib.pipeline.validate.check_image`); never modified.
            affine: its ``4×4`` IJK→RAS matrix (mm).
            grid: :class:`GeometryGrid` for MONAI models, nnU-Net's own inference for nnU-Net models.
            labels: ``[I, J, K]`` checked class ids on the same grid, or None.
            name, source: the case's name and where it comes from.
        """
        images, mapping = grid.to_model_grid(array, affine)
        model_labels = None if labels is None else grid.labels_to_model_grid(labels, mapping).long()
        return cls(name=name, images=images, labels=model_labels, affine=np.asarray(mapping.model_affine),
                   spacing_mm=tuple(float(v) for v in mapping.spacing_mm),  # type: ignore[arg-type]
                   source=source, mapping=mapping)


def case_name(image_path: str | Path) -> str:
    """A case's name from its image file: ``imagesTr/img0001.nii.gz`` → ``img0001``."""
    name = Path(image_path).name
    for suffix in (".nii.gz", ".nii", ".nrrd"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def dataset_param(key: str, path: str, case: str) -> str:
    """How messages name a file of a split: ``--data_dir label label0002.nii.gz (case img0002)``."""
    return f"--data_dir {key} {Path(path).name} (case {case})"


def case_transform(cfg: Any, entries: Sequence[Mapping[str, Any]]) -> Callable[[dict], Mapping[str, Any]]:
    """The seed's MONAI evaluation pipeline for these entries (``cfg``: a ``DataConfig``): with labels when every
    entry has one."""
    from SpectrumAttackLib.data.transforms import eval_transforms

    return eval_transforms(cfg, with_label=all(entry.get("label") for entry in entries))


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return exc


def class_table(class_names: Sequence[str], class_colours: Sequence[Sequence[int]]) -> tuple[list[str], list]:
    """Class names and RGB colours for reports: the model's own, or BTCV's for an unnamed 14-class model."""
    names, colours = list(class_names), [tuple(c) for c in class_colours]
    if len(names) == len(BTCV_CLASSES) and all(n == f"class_{i}" for i, n in enumerate(names)):
        return list(BTCV_CLASSES), list(BTCV_COLOURS)
    return names, colours
