"""Users' own models: TorchScript files and MONAI bundle folders, with their classes and preprocessing.

- **TorchScript** (``torch.jit.save``): class names and preprocessing are read from the ``metadata.json`` /
  ``inference.json`` extra files that MONAI's ``ckpt_export`` embeds; without them ``num_classes`` is required.
- **MONAI bundle** folder (``configs/metadata.json`` + ``models/model.pt``, or ``models/model.ts``): the network
  comes from ``network_def`` of ``configs/inference.json`` (or ``.yaml``), parsed with MONAI's ``ConfigParser``;
  without one, :func:`build_model` builds it from ``architecture`` and ``num_classes`` (or from the architecture
  the metadata records under :data:`NETWORK_KEY`). Class names come
  from the metadata's ``channel_def``; spacing, orientation, intensity window and ROI from the ``Spacingd``,
  ``Orientationd``, ``ScaleIntensityRanged`` and ``SlidingWindowInferer`` of the inference config. Settings the
  bundle does not state fall back to the seed's (:class:`Preprocessing` defaults) with a warning.

Two renames of current MONAI are applied to old bundles' ``network_def`` (seed-algorithms §13 item 25):
``SwinUNETR(img_size=...)`` is dropped and ``UNETR(pos_embed=...)`` becomes ``proj_type``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib.data.btcv import BTCV_COLOURS
from SpectrumAttackLib.models.bundle_safety import build_network_safely
from SpectrumAttackLib.models.catalogue import ClassInfo, ModelEntry, Preprocessing
from SpectrumAttackLib.models.checkpoints import LoadReport, is_torchscript, load_checkpoint
from SpectrumAttackLib.models.factory import build_model

__all__ = ["NETWORK_KEY", "is_bundle", "is_torchscript", "load_bundle", "load_torchscript", "synthesise_entry"]

logger = logging.getLogger(__name__)

_METADATA = "metadata.json"
#: metadata.json key naming the architecture of a bundle without ``network_def`` (``{"architecture": "unet",
#: "arguments": {...}}``, :func:`~SpectrumAttackLib.models.factory.build_model`'s), as ``workflows.harden`` writes.
NETWORK_KEY = "spectrumattack_network"
_INFERENCE = "inference.json"
_CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")


def is_bundle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a MONAI bundle folder (it has ``configs/metadata.json``)."""
    return (Path(path) / "configs" / _METADATA).is_file()


def _colour(index: int) -> tuple[int, int, int]:
    return (0, 0, 0) if index == 0 else BTCV_COLOURS[1 + (index - 1) % (len(BTCV_COLOURS) - 1)]


def synthesise_entry(
    name: str,
    architecture: str,
    num_classes: int,
    weights: str | os.PathLike,
    *,
    arguments: dict[str, Any] | None = None,
    preprocessing: Preprocessing | None = None,
    class_names: list[str] | None = None,
    provenance: str = "",
    description: str = "",
) -> ModelEntry:
    """A :class:`ModelEntry` for a model that is not in the catalogue; classes ``class_0``, ``class_1``, ... unless
    ``class_names`` are known."""
    names = class_names or [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names must have num_classes = {num_classes} entries, got {len(names)}.")
    return ModelEntry(
        name=name,
        architecture=architecture,
        num_classes=num_classes,
        classes=tuple(ClassInfo(i, str(n), _colour(i)) for i, n in enumerate(names)),
        preprocessing=preprocessing or Preprocessing(),
        arguments=dict(arguments or {}),
        weights=str(Path(weights).resolve()),
        provenance=provenance,
        description=description,
    )


def _find_targets(config: Any, found: dict[str, dict]) -> dict[str, dict]:
    """First dict with each ``_target_`` class name, searched depth-first through the raw config."""
    if isinstance(config, dict):
        target = config.get("_target_")
        if isinstance(target, str):
            found.setdefault(target.split(".")[-1], config)
        for value in config.values():
            _find_targets(value, found)
    elif isinstance(config, list):
        for value in config:
            _find_targets(value, found)
    return found


def _numbers(value: Any, count: int) -> tuple[float, ...] | None:
    """``value`` as ``count`` numbers (a scalar is repeated), or None when it is an expression or reference."""
    values = [value] * count if isinstance(value, (int, float)) else value
    if isinstance(values, list) and len(values) == count and all(isinstance(v, (int, float)) for v in values):
        return tuple(float(v) for v in values)
    return None


def _preprocessing_from(config: dict, metadata: dict, base: Preprocessing | None) -> Preprocessing:
    """Preprocessing stated by a bundle's inference config and metadata; the rest from ``base`` or the seed."""
    if base is not None:
        return base
    targets = _find_targets(config, {})
    values: dict[str, Any] = {}
    if "Orientationd" in targets and isinstance(targets["Orientationd"].get("axcodes"), str):
        values["orientation"] = targets["Orientationd"]["axcodes"]
    spacing = _numbers(targets.get("Spacingd", {}).get("pixdim"), 3)
    if spacing is not None:
        values["spacing_mm"] = spacing
    window = targets.get("ScaleIntensityRanged", {})
    for key in ("a_min", "a_max", "b_min", "b_max"):
        if isinstance(window.get(key), (int, float)):
            values[key] = float(window[key])
    roi = _numbers(targets.get("SlidingWindowInferer", {}).get("roi_size"), 3)
    if roi is None:
        shape = metadata.get("network_data_format", {}).get("inputs", {}).get("image", {}).get("spatial_shape")
        roi = _numbers(shape, 3)
    if roi is not None:
        values["roi"] = tuple(int(v) for v in roi)
    absent = [f.name for f in fields(Preprocessing) if f.name not in values]
    if absent:
        warnings.warn(
            f"the model does not state {', '.join(absent)}; using the seed's defaults for them "
            f"({', '.join(f'{k}={getattr(Preprocessing(), k)!r}' for k in absent)}).",
            stacklevel=3,
        )
    return replace(Preprocessing(), **values)


def _class_names(metadata: dict, num_classes: int | None) -> tuple[int | None, list[str] | None]:
    """``(num_classes, names)`` from the metadata's first output (``num_channels``, ``channel_def``)."""
    outputs = metadata.get("network_data_format", {}).get("outputs", {})
    output = next(iter(outputs.values()), {}) if isinstance(outputs, dict) else {}
    channel_def = output.get("channel_def") or {}
    stated = output.get("num_channels")
    if num_classes is None:
        num_classes = int(stated) if isinstance(stated, int) and stated > 1 else (len(channel_def) or None)
    if num_classes is None or not channel_def:
        return num_classes, None
    names = [str(channel_def.get(str(i), f"class_{i}")) for i in range(num_classes)]
    return num_classes, names


def load_torchscript(
    path: str | os.PathLike, *, num_classes: int | None = None, preprocessing: Preprocessing | None = None
) -> tuple[nn.Module, ModelEntry]:
    """Load a TorchScript model on the CPU with the classes and preprocessing of its embedded metadata.

    Raises:
        ValueError: the file cannot be loaded, or the class count is neither given nor in the metadata.
    """
    path = Path(path)
    extra = {_METADATA: "", _INFERENCE: ""}
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, but users' files are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"path must be a TorchScript file, got {str(path)!r} ({exc}).") from None
    metadata = json.loads(extra[_METADATA]) if extra[_METADATA] else {}
    config = json.loads(extra[_INFERENCE]) if extra[_INFERENCE] else {}
    num_classes, names = _class_names(metadata, num_classes)
    if num_classes is None:
        raise ValueError(
            f"num_classes must be given for TorchScript file {str(path)!r}, which has no metadata.json naming its "
            "output channels, got None."
        )
    entry = synthesise_entry(
        path.name, "torchscript", num_classes, path, class_names=names,
        preprocessing=_preprocessing_from(config, metadata, preprocessing),
        provenance=f"TorchScript file {path}", description=str(metadata.get("description", "")),
    )  # fmt: skip
    return model, entry


def _modernise_network_def(config: dict) -> dict:
    """Apply current MONAI's renames to an old bundle's ``network_def`` (a copy; an expression is left as it is)."""
    if not isinstance(config.get("network_def"), dict):
        return config
    network = dict(config["network_def"])
    target = str(network.get("_target_", "")).split(".")[-1]
    if target == "SwinUNETR" and "img_size" in network:
        network.pop("img_size")
        logger.info("Dropped SwinUNETR img_size (removed in current MONAI).")
    if target == "UNETR" and "pos_embed" in network:
        network.setdefault("proj_type", network.pop("pos_embed"))
    return {**config, "network_def": network}


def load_bundle(
    folder: str | os.PathLike,
    *,
    architecture: str | None = None,
    num_classes: int | None = None,
    preprocessing: Preprocessing | None = None,
    trust_code: bool = False,
    **build_kwargs: Any,
) -> tuple[nn.Module, ModelEntry, LoadReport | None]:
    """Load a MONAI bundle folder on the CPU.

    Without ``trust_code`` the ``network_def`` is built by
    :func:`~SpectrumAttackLib.models.bundle_safety.build_network_safely`: only classes of ``monai.networks.nets``
    with literal arguments, no ``$`` expressions or other bundle code. With ``trust_code=True`` MONAI's
    ``ConfigParser`` evaluates it as MONAI does, which runs whatever Python the bundle holds.

    Args:
        folder: the bundle (``configs/metadata.json`` plus ``models/model.pt`` or ``models/model.ts``).
        architecture, num_classes, build_kwargs: used when the bundle has no ``network_def``
            (see :func:`build_model`); ``num_classes`` also overrides the metadata's.
        preprocessing: overrides what the bundle states.
        trust_code: let the bundle's config run its code (``--trust_model_code``). Default False.

    Returns:
        ``(model, entry, report)``; ``report`` is None for a TorchScript bundle.

    Raises:
        FileNotFoundError: no ``models/model.pt`` or ``models/model.ts``.
        ValueError: unreadable configuration, or no ``network_def`` and no ``architecture`` / ``num_classes``;
            without ``trust_code``, a ``network_def`` that would run code.
    """
    from monai.bundle import ConfigParser

    folder = Path(folder)
    config_path = next((folder / "configs" / n for n in _CONFIG_NAMES if (folder / "configs" / n).is_file()), None)
    try:
        metadata = json.loads((folder / "configs" / _METADATA).read_text(encoding="utf-8"))
        config = ConfigParser.load_config_file(config_path) if config_path else {}
    except ValueError as exc:  # json.JSONDecodeError
        raise ValueError(f"bundle configs must be valid JSON/YAML, got {str(folder)!r} ({exc}).") from None
    weights = folder / "models" / "model.pt"
    if not weights.is_file():
        scripted = folder / "models" / "model.ts"
        if scripted.is_file():
            model, entry = load_torchscript(scripted, num_classes=num_classes, preprocessing=preprocessing)
            return model, replace(entry, name=str(metadata.get("name", folder.name)), architecture="bundle"), None
        raise FileNotFoundError(f"bundle must contain models/model.pt or models/model.ts, got {str(folder)!r}.")
    num_classes, names = _class_names(metadata, num_classes)
    if "network_def" in config and not trust_code:
        model = build_network_safely(_modernise_network_def(config))
        arch_name, arguments = "bundle", {}
    elif "network_def" in config:
        parser = ConfigParser()
        parser.read_config(_modernise_network_def(config))
        parser.read_meta(metadata)
        try:
            model = parser.get_parsed_content("network_def", instantiate=True)
        except Exception as exc:  # MONAI wraps any constructor error in a RuntimeError chain
            raise ValueError(f"network_def of bundle {str(folder)!r} must build with MONAI, got error {exc}") from None
        if not isinstance(model, nn.Module):
            raise ValueError(f"network_def of bundle {str(folder)!r} must build a torch.nn.Module, got "
                             f"{type(model).__name__}.")
        arch_name, arguments = "bundle", {}
    else:
        recorded = metadata.get(NETWORK_KEY)
        if architecture is None and isinstance(recorded, dict) and isinstance(recorded.get("architecture"), str):
            architecture = recorded["architecture"]  # a bundle written by workflows.harden
            build_kwargs = {**dict(recorded.get("arguments") or {}), **build_kwargs}
        if architecture is None or num_classes is None:
            raise ValueError(
                f"architecture must be given (with num_classes) for bundle {str(folder)!r}, which has no "
                f"network_def in configs/inference.json, got architecture={architecture!r}, "
                f"num_classes={num_classes!r}."
            )
        model = build_model(architecture, num_classes, **build_kwargs)
        arch_name, arguments = architecture, dict(build_kwargs)
    if num_classes is None:
        raise ValueError(f"num_classes must be given for bundle {str(folder)!r}, whose metadata has no channel_def.")
    report = load_checkpoint(model, weights)
    entry = synthesise_entry(
        str(metadata.get("name", folder.name)), arch_name, num_classes, weights, arguments=arguments,
        preprocessing=_preprocessing_from(config, metadata, preprocessing), class_names=names,
        provenance=f"MONAI bundle {folder} version {metadata.get('version', '?')}",
        description=str(metadata.get("description", "")),
    )  # fmt: skip
    return model, entry, report
