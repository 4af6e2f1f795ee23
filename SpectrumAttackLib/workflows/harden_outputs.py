"""What :func:`SpectrumAttackLib.workflows.harden.harden` writes: a hardened model that ``models.load_model`` (and,
for nnU-Net, nnU-Net's own ``nnUNetPredictor``) loads from its folder alone.

- **MONAI bundle in → MONAI bundle out**: the bundle copied file by file, ``models/model.pt`` replaced by the
  fine-tuned state dict (a bare state dict, as MONAI bundles store it). A ``models/model.ts`` (TorchScript export
  of the old weights) is left out: it would run the original model.
- **Catalogue name or checkpoint in → a new MONAI bundle**: ``models/model.pt``, ``configs/metadata.json`` (class
  names as ``channel_def``; the architecture and its arguments under
  :data:`~SpectrumAttackLib.models.user_models.NETWORK_KEY`, since the catalogue's networks are built by
  :func:`~SpectrumAttackLib.models.factory.build_model`) and ``configs/inference.json`` (the preprocessing as MONAI
  transforms: ``Orientationd``, ``Spacingd``, ``ScaleIntensityRanged``, ``SlidingWindowInferer``).
- **nnU-Net v2 trained-model folder in → one out**: the same ``plans.json``, ``dataset.json`` (and
  ``dataset_fingerprint.json`` where present), and ``fold_<k>/checkpoint_final.pth`` for the fine-tuned fold in
  nnU-Net's checkpoint format: the original checkpoint's entries (``trainer_name``, ``init_args``,
  ``inference_allowed_mirroring_axes``, ``optimizer_state``, ``logging``, ...) with ``network_weights`` replaced,
  plus ``spectrumattack_hardening`` (how it was fine-tuned, plain values). Other folds are not copied: they were
  not hardened.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib.models.catalogue import ModelEntry
from SpectrumAttackLib.models.nnunet import read_nnunet_checkpoint
from SpectrumAttackLib.models.user_models import NETWORK_KEY

__all__ = ["NNUNET_FILES", "write_bundle_copy", "write_new_bundle", "write_nnunet_folder"]

#: files of an nnU-Net trained-model folder copied as they are.
NNUNET_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")


def _weights(network: nn.Module) -> dict[str, torch.Tensor]:
    """The network's state dict, detached copies on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}


def _json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_bundle_copy(source: Path, root: Path, network: nn.Module) -> Path:
    """Copy bundle ``source`` into ``root`` with the fine-tuned ``models/model.pt``; returns ``root``."""
    skipped = {source / "models" / "model.pt", source / "models" / "model.ts"}
    shutil.copytree(source, root, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if Path(folder) / n in skipped])
    (root / "models").mkdir(exist_ok=True)
    torch.save(_weights(network), root / "models" / "model.pt")
    return root


def write_new_bundle(root: Path, network: nn.Module, entry: ModelEntry, name: str, description: str) -> Path:
    """A MONAI bundle for a catalogue or checkpoint model (see the module docstring); returns ``root``."""
    prep = entry.preprocessing
    roi = [int(r) for r in prep.roi]
    arguments = {"roi": roi, **{k: list(v) if isinstance(v, tuple) else v for k, v in entry.arguments.items()}}
    metadata = {
        "name": name,
        "version": "1.0.0",
        "description": description,
        NETWORK_KEY: {"architecture": entry.architecture, "arguments": arguments},
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "hounsfield" if prep.a_min < 0 else "magnitude",
                                 "num_channels": 1, "spatial_shape": roi}},
            "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": entry.num_classes,
                                 "channel_def": {str(c.id): c.name for c in entry.classes}}},
        },
    }
    inference = {
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": prep.orientation},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [float(s) for s in prep.spacing_mm],
             "mode": "bilinear"},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": float(prep.a_min),
             "a_max": float(prep.a_max), "b_min": float(prep.b_min), "b_max": float(prep.b_max), "clip": True},
        ]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": roi, "sw_batch_size": 1, "overlap": 0.5},
    }
    _json(root / "configs" / "metadata.json", metadata)
    _json(root / "configs" / "inference.json", inference)
    (root / "models").mkdir(exist_ok=True)
    torch.save(_weights(network), root / "models" / "model.pt")
    return root


def write_nnunet_folder(source: Path, root: Path, fold: str, checkpoint: str, network: nn.Module,
                        record: dict[str, Any]) -> Path:
    """An nnU-Net trained-model folder with fold ``fold`` fine-tuned (see the module docstring); returns ``root``.

    Args:
        source: the original trained-model folder.
        root: the new folder's content root.
        fold: the fold's name (``"0"``, ``"all"``).
        checkpoint: file name of the checkpoint that was fine-tuned (``checkpoint_final.pth`` or
            ``checkpoint_best.pth``); its entries other than the weights are kept.
        network: the fine-tuned fold network (the plans' architecture).
        record: plain values describing the fine-tuning, stored as ``spectrumattack_hardening``.
    """
    for name in NNUNET_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, root / name)
    original = read_nnunet_checkpoint(source / f"fold_{fold}" / checkpoint)
    target = root / f"fold_{fold}" / "checkpoint_final.pth"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**original, "network_weights": _weights(network), "spectrumattack_hardening": record}, target)
    return root
