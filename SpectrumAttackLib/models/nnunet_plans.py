"""What an nnU-Net ``plans.json`` may name: an exact set of classes, checked by identity before nnU-Net reads it.

nnU-Net turns the dotted names of a configuration's ``architecture`` into objects with ``pydoc.locate``, which walks
module attributes: ``dynamic_network_architectures.architectures.unet.torch.hub.load`` is ``torch.hub.load``, and a
plans file naming it runs code shipped next to it. So every dotted name in the plans' architectures is resolved
here first, by walking attributes from ``torch`` or ``dynamic_network_architectures`` only (nothing else is
imported), and accepted only when the object it reaches *is* one of :data:`NETWORK_CLASSES` (for
``network_class_name``) or :data:`LAYER_CLASSES` (for ``conv_op``, ``norm_op``, ``dropout_op``, ``nonlin`` and any
other string in the architecture's keyword arguments that names something). Accepted names are rewritten to the
class's own spelling (``module.Class``), so what nnU-Net later locates is the class that was checked.

A network class that moved between ``dynamic_network_architectures`` versions (older plans name
``...architectures.residual_unet.ResidualEncoderUNet``) is found by its class name among :data:`NETWORK_CLASSES`,
as nnU-Net's own fallback does, but only among those.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

__all__ = ["LAYER_CLASSES", "NETWORK_CLASSES", "checked_plans"]

#: the packages a dotted name may start from.
PACKAGES = ("torch", "dynamic_network_architectures")
#: the ``dynamic_network_architectures`` network classes a plans file may name (nnU-Net's planners write these).
NETWORK_CLASSES = ("dynamic_network_architectures.architectures.unet.PlainConvUNet",
                   "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                   "dynamic_network_architectures.architectures.unet.ResidualUNet")
#: the ``torch.nn`` layer, normalisation, dropout and activation classes a plans file may name.
LAYER_CLASSES = tuple(f"torch.nn.{name}" for name in (
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "GroupNorm", "LayerNorm",
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
    "LeakyReLU", "ReLU", "ReLU6", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Hardswish",
    "Tanh", "Sigmoid", "Softplus", "Identity",
))
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def _import(name: str) -> Any:
    module_name, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _allowed(names: tuple[str, ...]) -> dict[int, str]:
    """``{id(class): canonical name}`` of the allowed classes (imported from their trusted homes)."""
    classes = [_import(name) for name in names]
    return {id(cls): f"{cls.__module__}.{cls.__qualname__}" for cls in classes}


def _resolve(name: str) -> Any:
    """The object a dotted name reaches by attribute walking from :data:`PACKAGES`, or None.

    Only submodules of :data:`PACKAGES` are imported on the way (``import_module`` of ``torch.x.y``), never a
    module of another package; attributes are read with ``getattr`` and nothing found is called.
    """
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    current: Any = importlib.import_module(parts[0])
    for depth, part in enumerate(parts[1:], start=2):
        if hasattr(current, part):
            current = getattr(current, part)
            continue
        module_name = ".".join(parts[:depth])
        if getattr(current, "__name__", None) != ".".join(parts[: depth - 1]):
            return None  # not a module of the trusted package: nothing to import below it
        try:
            current = importlib.import_module(module_name)
        except ImportError:
            return None
    return current


def _canonical(key: str, value: Any, allowed: dict[int, str], by_name: dict[str, str] | None, where: str) -> str:
    """The canonical spelling of the class ``value`` names, or ValueError naming ``key``."""
    kind = "a network class of dynamic_network_architectures" if by_name is not None else \
        "a torch.nn layer, normalisation, dropout or activation class"
    if not isinstance(value, str) or not _DOTTED.match(value):
        raise ValueError(f"plans.json of {where} must name {kind} in {key!r}, got {value!r}.")
    found = _resolve(value)
    if found is not None and id(found) in allowed:
        return allowed[id(found)]
    if found is None and by_name is not None and value.split(".")[0] == "dynamic_network_architectures" \
            and value.rsplit(".", 1)[-1] in by_name:
        return by_name[value.rsplit(".", 1)[-1]]
    raise ValueError(f"plans.json of {where} must name {kind} in {key!r}, got {value!r} (nnU-Net would import "
                     f"it; refused).")


def _check_kwargs(value: Any, key: str, layers: dict[int, str], where: str) -> Any:
    """``value`` with every dotted string in it checked against the layer classes and made canonical."""
    if isinstance(value, dict):
        return {k: _check_kwargs(v, f"{key}.{k}", layers, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_check_kwargs(v, f"{key}[{i}]", layers, where) for i, v in enumerate(value)]
    if isinstance(value, str) and "." in value:
        return _canonical(key, value, layers, None, where)
    return value


def checked_plans(plans: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """A copy of ``plans`` whose every configuration's architecture names only allowed classes, canonically spelt.

    Args:
        plans: the parsed ``plans.json``.
        folder: the model folder (for messages).

    Returns:
        the plans with ``network_class_name`` and each named class in ``arch_kwargs`` replaced by the allowed
        class's own ``module.Class`` name.

    Raises:
        ValueError: one line naming the configuration's key (``configurations.3d_fullres.architecture.arch_kwargs.
            nonlin``...) whose value is not an allowed class, or a ``_kw_requires_import`` entry naming no keyword.
    """
    where = f"nnU-Net model {str(folder)!r}"
    networks = _allowed(NETWORK_CLASSES)
    network_names = {name.rsplit(".", 1)[-1]: name for name in networks.values()}
    layers = _allowed(LAYER_CLASSES)
    plans = copy.deepcopy(plans)
    configurations = plans.get("configurations")
    if not isinstance(configurations, dict):
        raise ValueError(f"plans.json of {where} must hold a 'configurations' object, got {configurations!r}.")
    for name, configuration in configurations.items():
        architecture = configuration.get("architecture") if isinstance(configuration, dict) else None
        if architecture is None:
            continue
        prefix = f"configurations.{name}.architecture"
        if not isinstance(architecture, dict) or not isinstance(architecture.get("arch_kwargs", {}), dict):
            raise ValueError(f"plans.json of {where} must hold an object with arch_kwargs in {prefix!r}.")
        architecture["network_class_name"] = _canonical(
            f"{prefix}.network_class_name", architecture.get("network_class_name"), networks, network_names, where)
        kwargs = architecture.get("arch_kwargs", {})
        for key in architecture.get("_kw_requires_import", ()):
            if not isinstance(key, str) or key not in kwargs:
                raise ValueError(f"plans.json of {where} must list keys of arch_kwargs in "
                                 f"'{prefix}._kw_requires_import', got {key!r}.")
            if kwargs[key] is not None:
                kwargs[key] = _canonical(f"{prefix}.arch_kwargs.{key}", kwargs[key], layers, None, where)
        architecture["arch_kwargs"] = _check_kwargs(kwargs, f"{prefix}.arch_kwargs", layers, where)
    return plans
