"""The module's model list: the catalogue, the models hardened in this scene, and "my model (file)".

A hardened model is shown under its own name as soon as ``logic.harden`` has written it; what it is (its path and
the loading settings of the model it was made from) is kept in an attribute of the module's parameter node, so it
is saved with the scene and every section (Attack, Audit, Harden) offers it. No Qt, no torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from SpectrumAttackLib.models.catalogue import get_entry, load_catalogue

__all__ = [
    "HARDENED_ATTRIBUTE",
    "USER_MODEL",
    "catalogue_names",
    "class_dicts",
    "hardened_models",
    "model_choices",
    "model_description",
    "module_node",
    "register_hardened",
    "resolve_model",
]

#: Model choice meaning "the file or folder in modelPath".
USER_MODEL = "my model (file)"
#: Parameter-node attribute holding the hardened models (JSON: name → loading settings).
HARDENED_ATTRIBUTE = "SpectrumAttack.hardenedModels"


def module_node(scene: Any) -> Any:
    """The module's parameter node of ``scene``: the singleton scripted-module node that Slicer's
    ``ScriptedLoadableModuleLogic.getParameterNode`` finds or makes (same tag and ``ModuleName``), also without the
    application."""
    node = scene.GetSingletonNode("SpectrumAttack", "vtkMRMLScriptedModuleNode")
    if node is not None:
        node.SetAttribute("ModuleName", "SpectrumAttack")  # as Slicer does: a closed scene may have dropped it
    else:
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        node.SetSingletonTag("SpectrumAttack")
        node.SetAttribute("ModuleName", "SpectrumAttack")
        node = scene.AddNode(node)
    return node


def catalogue_names() -> list[str]:
    """Names of the catalogue's models ([] when the catalogue cannot be read: the module still loads)."""
    try:
        return [entry.name for entry in load_catalogue()]
    except (FileNotFoundError, ValueError) as error:
        logging.warning("SpectrumAttack: the model catalogue could not be read: %s", error)
        return []


def class_dicts(classes: Any) -> list[dict[str, Any]]:
    """``[{"id", "name", "rgb"}]`` from catalogue ``ClassInfo`` objects."""
    return [{"id": c.id, "name": c.name, "rgb": list(c.rgb)} for c in classes]


def hardened_models(node: Any) -> dict[str, dict[str, Any]]:
    """The hardened models recorded on the MRML parameter node ``node`` (name → ``{"model", "architecture",
    "numClasses", "modelArguments", "source"}``); {} without a node."""
    text = node.GetAttribute(HARDENED_ATTRIBUTE) if node is not None else None
    try:
        models = json.loads(text) if text else {}
    except json.JSONDecodeError:
        logging.warning("SpectrumAttack: ignoring an unreadable %s attribute", HARDENED_ATTRIBUTE)
        return {}
    return models if isinstance(models, dict) else {}


def register_hardened(node: Any, name: str, settings: Mapping[str, Any]) -> str:
    """Record a hardened model on ``node`` under ``name`` (made unique); returns the name used."""
    models = hardened_models(node)
    unique, index = name, 2
    while unique in models or unique in catalogue_names() or unique == USER_MODEL:
        unique, index = f"{name} ({index})", index + 1
    models[unique] = dict(settings)
    node.SetAttribute(HARDENED_ATTRIBUTE, json.dumps(models))
    return unique


def model_choices(node: Any) -> list[str]:
    """What the model lists show: the catalogue, then the hardened models, then :data:`USER_MODEL`."""
    return [*catalogue_names(), *hardened_models(node), USER_MODEL]


def resolve_model(node: Any, model: Any, **given: Any) -> dict[str, Any]:
    """Loading settings of a model choice: ``{"model": ..., "architecture", "numClasses", "modelArguments"}`` for
    a hardened model's name, ``{"model": model}`` for anything else (a catalogue name, a path, a LoadedModel);
    ``given`` settings that are not None win."""
    settings = {"model": model}
    if isinstance(model, str):
        hardened = hardened_models(node).get(model)
        if hardened is not None:
            settings = {k: hardened.get(k) for k in ("model", "architecture", "numClasses", "modelArguments")
                        if hardened.get(k) not in (None, {}, "")}
    settings.update({k: v for k, v in given.items() if v is not None})
    return settings


def model_description(node: Any, name: str) -> str:
    """One line about a model choice for the GUI."""
    if name == USER_MODEL:
        return "A checkpoint, TorchScript file, MONAI bundle or nnU-Net v2 model folder of your own."
    hardened = hardened_models(node).get(name)
    if hardened is not None:
        return f"Hardened ({hardened.get('mode', '')}) from {hardened.get('source', '?')}: {hardened['model']}"
    try:
        entry = get_entry(name)
    except (FileNotFoundError, ValueError):
        return ""
    spacing = " × ".join(f"{s:g}" for s in entry.preprocessing.spacing_mm)
    return f"{entry.description} ({entry.num_classes - 1} organs, {spacing} mm)".strip()
