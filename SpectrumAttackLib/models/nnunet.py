"""nnU-Net v2 trained-model folders: read, checked, built and loaded as nnU-Net builds them.

A trained-model folder is what ``nnUNetv2_train`` writes (and what TotalSegmentator installs)::

    <Trainer>__<Plans>__<configuration>/
        dataset.json   plans.json
        fold_0/checkpoint_final.pth   fold_0/checkpoint_best.pth   fold_1/...

The network is built from the plans with nnU-Net's own ``get_network_from_plans`` (deep supervision off, as its
predictor does) and each fold's ``network_weights`` are loaded strictly. Checkpoints are read with
``torch.load(weights_only=True)``; the only non-tensor objects allowed in them are the numpy scalars and dtypes
that nnU-Net's training log holds (:data:`CHECKPOINT_GLOBALS`), so a file holding any other pickled object is
refused before anything in it runs. The plans may only name an exact set of network classes from
``dynamic_network_architectures`` and layer classes from ``torch.nn``, checked by identity before nnU-Net reads them
(:mod:`SpectrumAttackLib.models.nnunet_plans`; nnU-Net imports whatever the plans name).

What the attacks see is :class:`NnUNetEnsemble`: an image in [0, 1] (the intensity window of
:class:`NnUNetPreprocessing`) → the configuration's normalisation as a fixed layer → every fold's network (with
nnU-Net's mirroring on request) → logits averaged over the folds, as nnU-Net ensembles them. The rest of nnU-Net's
inference (crop, resampling, sliding window, export) is :mod:`SpectrumAttackLib.inference.nnunet`.

Needs the optional extra ``pip install 'SpectrumAttack[nnunet]'`` (``nnunetv2``, ``dynamic_network_architectures``);
this module itself imports without it and without nnU-Net's ``nnUNet_raw``/``_preprocessed``/``_results``
environment variables.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.data.btcv import BTCV_CLASSES, BTCV_COLOURS, BTCV_TOTALSEGMENTATOR_NAMES
from SpectrumAttackLib.models.catalogue import ClassInfo, ModelEntry, Preprocessing
from SpectrumAttackLib.models.nnunet_plans import checked_plans

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_GLOBALS",
    "NNUNET_EXTRA",
    "NnUNetEnsemble",
    "NnUNetPreprocessing",
    "is_nnunet_folder",
    "load_nnunet",
    "read_nnunet_checkpoint",
]

#: how to install what nnU-Net folders need.
NNUNET_EXTRA = "pip install 'SpectrumAttack[nnunet]'"
#: ``--checkpoint`` choice → file name inside ``fold_<k>/``.
CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth"}
#: normalisation schemes whose intensity window is known before the image is seen.
NORMALISATIONS = ("CTNormalization", "ZScoreNormalization")
#: image readers whose array layout we reproduce (``plans["image_reader_writer"]``).
READERS = ("SimpleITKIO", "NibabelIO", "NibabelIOWithReorient", "SimpleITKIOWithReorient")
_FOLD = re.compile(r"^fold_(\d+|all)$")


def _numpy_globals() -> list[Any]:
    """The numpy objects nnU-Net's checkpoints pickle (training-log floats): scalar rebuild, dtype, float dtypes.

    Checkpoints written with numpy 1.x name the scalar rebuild ``numpy.core.multiarray.scalar``, numpy 2 writes
    ``numpy._core.multiarray.scalar``; both names are allowed for the same function.
    """
    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        np.dtypes.Float64DType,
        np.dtypes.Float32DType,
        np.dtypes.Int64DType,
    ]


#: non-tensor globals a checkpoint may hold (see :func:`read_nnunet_checkpoint`).
CHECKPOINT_GLOBALS = _numpy_globals()


def is_nnunet_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like an nnU-Net trained-model folder (``plans.json``, ``dataset.json`` or a
    ``fold_<k>`` folder in it); whether it is complete is checked on loading."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    return (folder / "plans.json").is_file() or (folder / "dataset.json").is_file() or any(
        child.is_dir() and _FOLD.match(child.name) for child in folder.iterdir()
    )


def _require_nnunet() -> None:
    try:
        import dynamic_network_architectures  # noqa: F401
        import nnunetv2  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"nnU-Net model folders need nnunetv2 and dynamic_network_architectures: install the optional extra "
            f"with `{NNUNET_EXTRA}` ({exc})."
        ) from None


def read_nnunet_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read an nnU-Net checkpoint safely: ``weights_only=True`` with only :data:`CHECKPOINT_GLOBALS` allowed.

    Returns:
        the checkpoint dict; ``network_weights`` is a ``{name: tensor}`` state dict.

    Raises:
        ValueError: the file holds another pickled object (refused, nothing in it runs), is not a torch file, or
            has no ``network_weights`` state dict.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(CHECKPOINT_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"checkpoint {str(path)!r} must hold only tensors and the plain values nnU-Net writes; it holds another "
            f"pickled object and was refused without running it ({detail})."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} must be a torch checkpoint file, got an unreadable file ({exc}).") \
            from None
    weights = checkpoint.get("network_weights") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"checkpoint {str(path)!r} must be an nnU-Net checkpoint with a 'network_weights' state "
                         f"dict, got {type(checkpoint).__name__} without one.")
    return checkpoint


@dataclass(frozen=True)
class NnUNetPreprocessing(Preprocessing):
    """Preprocessing of an nnU-Net configuration, read from ``plans.json`` (all axes in nnU-Net's order, i.e. after
    the reader's axis reversal and the plans' ``transpose_forward``).

    The inherited fields describe what the attacks see: ``spacing_mm`` the configuration spacing, ``a_min``/``a_max``
    the intensity window mapped onto [0, 1] (CT: the foreground 0.5 / 99.5 percentiles nnU-Net clips to; z-score:
    the image's own range, set per image), ``roi`` the patch size, ``orientation`` ``"RAS"`` for reorienting
    readers and ``"native"`` otherwise.

    Attributes:
        configuration: e.g. ``"3d_fullres"``.
        plans: the whole ``plans.json`` (nnU-Net's resampling functions are built from it).
        dataset: the whole ``dataset.json``.
        reader: ``plans["image_reader_writer"]`` (one of :data:`READERS`).
        transpose_forward: axis order nnU-Net applies after reading.
        normalisation: ``"CTNormalization"`` or ``"ZScoreNormalization"``.
        intensity: foreground intensity properties of the channel (``mean``, ``std``, ``percentile_00_5``,
            ``percentile_99_5``...).
        mirror_axes: axes nnU-Net's test-time mirroring flips (the checkpoint's), empty when the trainer allows none.
        tile_step_size: sliding-window step as a fraction of the patch (nnU-Net's default 0.5).
        folder: the trained-model folder.
    """

    configuration: str = ""
    plans: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    dataset: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    reader: str = "SimpleITKIO"
    transpose_forward: tuple[int, int, int] = (0, 1, 2)
    normalisation: str = "CTNormalization"
    intensity: dict[str, float] = field(default_factory=dict, compare=False)
    mirror_axes: tuple[int, ...] = ()
    tile_step_size: float = 0.5
    folder: str = ""


class NnUNetIntensity(nn.Module):
    """The configuration's normalisation as a fixed affine layer on [0, 1] images.

    ``x`` in [0, 1] stands for ``low + x·(high − low)`` in input units (nnU-Net's clip range for CT); the layer
    returns ``(low + x·(high − low) − mean) / max(std, 1e-8)``, which is nnU-Net's CT normalisation of the clipped
    input (and its z-score normalisation with the image's own ``mean``/``std``).

    Shape: ``[B, 1, ...] → [B, 1, ...]``.
    """

    def __init__(self, low: float, high: float, mean: float, std: float) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(0.0, dtype=torch.float64), persistent=False)
        self.register_buffer("shift", torch.tensor(0.0, dtype=torch.float64), persistent=False)
        self.set_window(low, high, mean, std)

    def set_window(self, low: float, high: float, mean: float, std: float) -> None:
        """Set the window ``[low, high]`` (input units) and the statistics ``mean``, ``std`` (same units)."""
        if not high > low:
            raise ValueError(f"the intensity window must have high > low, got [{low!r}, {high!r}].")
        std = max(float(std), 1e-8)
        self.low, self.high, self.mean, self.std = float(low), float(high), float(mean), std
        self.scale.fill_((high - low) / std)
        self.shift.fill_((low - mean) / std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.scale.to(images.dtype) + self.shift.to(images.dtype)

    def normalised_zero(self) -> float:
        """The [0, 1] value whose normalised intensity is 0 (what nnU-Net pads with, seen before the layer)."""
        return float(-self.shift / self.scale)

    def extra_repr(self) -> str:
        return f"window=[{self.low:g}, {self.high:g}], mean={self.mean:g}, std={self.std:g}"


class NnUNetEnsemble(nn.Module):
    """An nnU-Net model as the attacks see it: [0, 1] patch → normalisation → folds (mirrored on request) → mean.

    Args:
        networks: one network per fold, built from the plans, in eval mode.
        intensity: the fixed normalisation layer.
        mirror_axes: spatial axes (0, 1, 2) nnU-Net's test-time mirroring may flip.
        mirroring: whether forward passes average over the mirrored inputs as nnU-Net's predictor does with
            ``use_mirroring=True`` (2^len(mirror_axes) network passes per fold). Default False.

    Shape: ``[B, 1, *patch]`` (any size divisible by the network's total stride) → logits ``[B, K, *patch]``.
    """

    def __init__(self, networks: Sequence[nn.Module], intensity: NnUNetIntensity, mirror_axes: Sequence[int] = (),
                 mirroring: bool = False) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.intensity = intensity
        self.mirror_axes = tuple(int(a) for a in mirror_axes)
        self.mirroring = bool(mirroring)

    def _flips(self) -> list[tuple[int, ...]]:
        """Dims flipped together for each mirrored pass (nnU-Net's order: all non-empty axis combinations)."""
        if not self.mirroring:
            return []
        axes = [a + 2 for a in self.mirror_axes]
        return [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]

    def predict_normalised(self, normalised: torch.Tensor) -> torch.Tensor:
        """Fold-averaged logits ``[B, K, ...]`` of already normalised patches ``[B, 1, ...]``."""
        flips = self._flips()
        total = None
        for network in self.networks:
            prediction = network(normalised)
            for dims in flips:
                prediction = prediction + torch.flip(network(torch.flip(normalised, dims)), dims)
            if flips:
                prediction = prediction / (len(flips) + 1)
            total = prediction if total is None else total + prediction
        return total / len(self.networks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict_normalised(self.intensity(images))

    def use(self, mapping: Any) -> None:
        """Normalise with the window and statistics of one mapped image (an
        :class:`~SpectrumAttackLib.inference.nnunet.NnUNetMapping`: z-score models use each image's own, CT models
        always the dataset's)."""
        self.intensity.set_window(mapping.a_min, mapping.a_max, mapping.mean, mapping.std)

    def extra_repr(self) -> str:
        return f"folds={len(self.networks)}, mirror_axes={self.mirror_axes}, mirroring={self.mirroring}"


# ------------------------------------------------------------------------------------------------ the folder
def _read_json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"nnU-Net model folder {str(folder)!r} must contain {name} (as nnUNetv2_train "
                                f"writes it next to the fold_<k> folders), got none.")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{name} of nnU-Net model folder {str(folder)!r} must be valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} of nnU-Net model folder {str(folder)!r} must be a JSON object.")
    return value


def _available_folds(folder: Path, filename: str) -> list[str]:
    found = [child.name[5:] for child in folder.iterdir()
             if child.is_dir() and _FOLD.match(child.name) and (child / filename).is_file()]
    return sorted(found, key=lambda f: (f == "all", int(f) if f.isdigit() else 0))


def _resolve_folds(folder: Path, folds: Sequence[int | str] | None, filename: str) -> list[str]:
    available = _available_folds(folder, filename)
    if folds is None:
        if not available:
            raise FileNotFoundError(f"nnU-Net model folder {str(folder)!r} must hold fold_<k>/{filename} for at "
                                    f"least one fold, got none.")
        return available
    if isinstance(folds, (str, int)):
        folds = [folds]
    chosen = [str(f) for f in folds]
    if not chosen or any(not (f.isdigit() or f == "all") for f in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"folds must be distinct fold numbers (or 'all'), got {list(folds)!r}.")
    missing = [f for f in chosen if f not in available]
    if missing:
        raise FileNotFoundError(
            f"folds must name folds with a {filename} in {str(folder)!r}; fold_{missing[0]}/{filename} does not "
            f"exist (available: {', '.join(available) or 'none'})."
        )
    return chosen


def _configuration_name(folder: Path, checkpoint: dict[str, Any]) -> str:
    parts = folder.name.split("__")
    from_name = parts[2] if len(parts) == 3 else None
    init_args = checkpoint.get("init_args") if isinstance(checkpoint.get("init_args"), dict) else {}
    from_checkpoint = init_args.get("configuration")
    if from_name and from_checkpoint and from_name != from_checkpoint:
        raise ValueError(f"checkpoint of {str(folder)!r} was trained for configuration {from_checkpoint!r}, but the "
                         f"folder name says {from_name!r}: weights of another model.")
    name = from_name or from_checkpoint
    if not name:
        raise ValueError(f"nnU-Net model folder {str(folder)!r} must be named <Trainer>__<Plans>__<configuration> "
                         f"or hold checkpoints that state their configuration, got neither.")
    return str(name)


def _check_plans(plans: dict[str, Any], configuration: str, dataset: dict[str, Any], folder: Path) -> Any:
    """nnU-Net's ConfigurationManager for ``configuration``, after refusing what we do not run."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    where = f"nnU-Net model {str(folder)!r}"
    if configuration not in plans.get("configurations", {}):
        raise ValueError(f"plans.json of {where} must define configuration {configuration!r}, got "
                         f"{sorted(plans.get('configurations', {}))}.")
    manager = PlansManager(plans)
    config = manager.get_configuration(configuration)
    if config.previous_stage_name is not None:
        raise ValueError(f"{where} is a cascade stage ({configuration!r} needs the segmentation of "
                         f"{config.previous_stage_name!r}); cascades are not supported, use a 3d_fullres or "
                         f"3d_lowres model.")
    if len(config.patch_size) != 3:
        raise ValueError(f"{where} is a 2-D configuration ({configuration!r}); only 3-D configurations are "
                         f"supported.")
    if manager.get_label_manager(dataset).has_regions:
        raise ValueError(f"{where} is region-based (dataset.json has regions, e.g. BraTS); region-based models "
                         f"are not supported (the attacks need one softmax class per voxel).")
    channels = dataset.get("channel_names", dataset.get("modality", {}))
    if len(channels) != 1:
        raise ValueError(f"{where} must take one input channel, got {len(channels)} ({dict(channels)}).")
    scheme = config.normalization_schemes[0]
    if scheme not in NORMALISATIONS:
        raise ValueError(f"{where} uses normalisation {scheme!r}; supported: {', '.join(NORMALISATIONS)}.")
    if scheme == "ZScoreNormalization" and config.use_mask_for_norm[0]:
        raise ValueError(f"{where} normalises inside the non-zero mask only (use_mask_for_norm, e.g. brain MRI); "
                         f"that is not supported.")
    reader = plans.get("image_reader_writer", "SimpleITKIO")
    if reader not in READERS:
        raise ValueError(f"{where} reads images with {reader!r}; supported readers: {', '.join(READERS)}.")
    return config


def _colour(index: int, name: str) -> tuple[int, int, int]:
    """The BTCV colour of a known organ name (BTCV or TotalSegmentator spelling), else one by index."""
    key = name.strip().lower().replace("_", " ")
    for btcv_id, btcv_name in enumerate(BTCV_CLASSES):
        if key in (btcv_name, BTCV_TOTALSEGMENTATOR_NAMES.get(btcv_id, "").replace("_", " ")):
            return BTCV_COLOURS[btcv_id]
    return (0, 0, 0) if index == 0 else BTCV_COLOURS[1 + (index - 1) % (len(BTCV_COLOURS) - 1)]


def _classes(dataset: dict[str, Any], count: int, folder: Path) -> tuple[ClassInfo, ...]:
    names: dict[int, str] = {}
    for name, value in dataset.get("labels", {}).items():
        if name != "ignore" and isinstance(value, int):
            names[int(value)] = str(name)
    if sorted(names) != list(range(count)):
        raise ValueError(f"dataset.json of {str(folder)!r} must name labels 0..{count - 1}, got {sorted(names)}.")
    return tuple(ClassInfo(i, names[i], _colour(i, names[i])) for i in range(count))


def load_nnunet(
    folder: str | os.PathLike,
    *,
    folds: Sequence[int | str] | int | str | None = None,
    checkpoint: str = "final",
    mirroring: bool = False,
) -> tuple[NnUNetEnsemble, ModelEntry]:
    """Load an nnU-Net v2 trained-model folder on the CPU.

    Args:
        folder: ``.../<Trainer>__<Plans>__<configuration>/`` with ``dataset.json``, ``plans.json`` and
            ``fold_<k>/checkpoint_<final|best>.pth``.
        folds: folds to ensemble (their logits are averaged); ``None`` takes every fold that has the checkpoint.
        checkpoint: ``"final"`` or ``"best"``.
        mirroring: nnU-Net's test-time mirroring in every forward pass. Default False.

    Returns:
        ``(model, entry)``: :class:`NnUNetEnsemble` in eval mode and a :class:`ModelEntry` (architecture
        ``"nnunet"``, classes from ``dataset.json``, :class:`NnUNetPreprocessing`).

    Raises:
        ImportError: the ``nnunet`` extra is not installed (the message says how to install it).
        FileNotFoundError: no ``plans.json`` / ``dataset.json``, or a requested fold without the checkpoint.
        ValueError: a checkpoint with a foreign pickled object or another network's weights; a cascade,
            region-based, 2-D or multi-channel model; an unsupported normalisation or reader; bad ``folds`` or
            ``checkpoint``.
    """
    folder = Path(folder).expanduser().resolve()
    checkpoint = check_choice("checkpoint", checkpoint, tuple(CHECKPOINTS))
    plans = _read_json(folder, "plans.json")
    dataset = _read_json(folder, "dataset.json")
    filename = CHECKPOINTS[checkpoint]
    chosen = _resolve_folds(folder, folds, filename)
    _require_nnunet()
    plans = checked_plans(plans, folder)  # before nnU-Net reads a name in it
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    states = [read_nnunet_checkpoint(folder / f"fold_{f}" / filename) for f in chosen]
    configuration = _configuration_name(folder, states[0])
    config = _check_plans(plans, configuration, dataset, folder)
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    num_classes = PlansManager(plans).get_label_manager(dataset).num_segmentation_heads
    networks = []
    for fold, state in zip(chosen, states, strict=True):
        network = get_network_from_plans(
            config.network_arch_class_name, config.network_arch_init_kwargs,
            config.network_arch_init_kwargs_req_import, 1, num_classes, allow_init=False, deep_supervision=False,
        )  # fmt: skip
        try:
            network.load_state_dict(state["network_weights"], strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise ValueError(
                f"fold_{fold}/{filename} of {str(folder)!r} must hold the weights of the network plans.json plans "
                f"for {configuration!r} ({config.network_arch_class_name.split('.')[-1]}, {num_classes} classes); "
                f"it holds another network's ({first})."
            ) from None
        networks.append(network.eval())
    mirror = states[0].get("inference_allowed_mirroring_axes")
    properties = plans["foreground_intensity_properties_per_channel"]["0"]
    scheme = config.normalization_schemes[0]
    low, high = float(properties["percentile_00_5"]), float(properties["percentile_99_5"])
    intensity = NnUNetIntensity(low, high, float(properties["mean"]), float(properties["std"]))
    model = NnUNetEnsemble(networks, intensity, tuple(mirror or ()), mirroring).eval()
    reader = plans.get("image_reader_writer", "SimpleITKIO")
    preprocessing = NnUNetPreprocessing(
        orientation="RAS" if reader.endswith("WithReorient") else "native",
        spacing_mm=tuple(float(s) for s in config.spacing),  # type: ignore[arg-type]
        a_min=low, a_max=high, b_min=0.0, b_max=1.0,
        roi=tuple(int(p) for p in config.patch_size),  # type: ignore[arg-type]
        configuration=configuration, plans=plans, dataset=dataset, reader=reader,
        transpose_forward=tuple(int(t) for t in plans["transpose_forward"]),  # type: ignore[arg-type]
        normalisation=scheme, intensity={k: float(v) for k, v in properties.items()},
        mirror_axes=tuple(int(a) for a in (mirror or ())), folder=str(folder),
    )  # fmt: skip
    entry = ModelEntry(
        name=folder.name, architecture="nnunet", num_classes=num_classes,
        classes=_classes(dataset, num_classes, folder), preprocessing=preprocessing,
        arguments={"folds": chosen, "checkpoint": checkpoint, "mirroring": bool(mirroring)},
        weights=str(folder),
        provenance=f"nnU-Net v2 model {folder} ({states[0].get('trainer_name', '?')}, folds {', '.join(chosen)}, "
                   f"checkpoint_{checkpoint})",
        description=str(dataset.get("description", dataset.get("name", ""))),
    )  # fmt: skip
    return model, entry
