"""Loading and saving model weights, with the fixes old checkpoints need and clear mismatch errors.

:func:`load_checkpoint` accepts the layouts found in the wild: ``{"state_dict": ...}`` (the seed's trainer),
``{"model": ...}`` / ``{"model_state_dict": ...}``, or a bare state dict; it strips the ``module.`` prefix of
(Distributed)DataParallel and the ``_orig_mod.`` prefix of ``torch.compile``. Legacy MONAI keys handled
(checked against MONAI 1.6 source and public loading reports):

- ``vit.patch_embedding.cls_token`` in UNETR checkpoints from MONAI <= 0.7 (e.g. research-contributions' UNETR
  BTCV weights): current MONAI keeps a class token only in classification ViTs, so the key is dropped;
- ``*.norm_cross_attn.*`` of ViT blocks (MONAI >= 1.4) is absent from older checkpoints and is only used with
  ``with_cross_attention=True``, which UNETR never sets, so its absence is not an error.

Anything else that does not fit raises ``ValueError`` saying what differs: the class count
(``num_classes`` / ``--out_channels``), the architecture, or a size setting. Weights are always read with
``torch.load(..., weights_only=True, map_location="cpu")``.

Example:
    >>> model = build_model("unet-r", 14)
    >>> report = load_checkpoint(model, "model_best.pt")
    >>> report.missing, report.unexpected
    ((), ())
"""

from __future__ import annotations

import logging
import os
import pickle
import uuid
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["LoadReport", "is_torchscript", "load_checkpoint", "read_state_dict", "save_checkpoint"]

logger = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")
_DROPPED_LEGACY = ("vit.patch_embedding.cls_token",)
_OPTIONAL_SUFFIXES = (".norm_cross_attn.weight", ".norm_cross_attn.bias")
_EMBEDDING_KEYS = {
    "perceptron": "vit.patch_embedding.patch_embeddings.1.weight",
    "conv": "vit.patch_embedding.patch_embeddings.weight",
}
_SIGNATURES = {"swinViT.": "swin-unetr", "vit.": "unet-r", "model.0.": "unet", "convInit.": "segresnet"}


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_checkpoint` did.

    Attributes:
        missing: model keys the checkpoint did not provide (left at their initial values).
        unexpected: checkpoint keys the model has no place for (not loaded).
        renamed: checkpoint key → model key, for every key whose name was changed (prefixes, legacy names).
        ignored: keys known to be unused by current MONAI: dropped legacy keys of the checkpoint and optional
            model keys the checkpoint lacks.
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every model weight came from the checkpoint and nothing was left over."""
        return not self.missing and not self.unexpected


def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/``), not a plain ``torch.save`` file."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from its container (``state_dict``, ``model``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a weights-only torch checkpoint holding a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint must be an existing file, got {str(path)!r} (no such file).")
    if is_torchscript(path):
        raise ValueError(
            f"checkpoint must be a weights-only torch file (a state dict saved with torch.save), got the TorchScript "
            f"file {str(path)!r}: pass the TorchScript file as the model itself (load_model)."
        )
    try:
        content = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        # torch's own advice here is weights_only=False, which this project never does: keep its first sentence.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise ValueError(
            f"checkpoint must be a weights-only torch file (a state dict saved with torch.save), got {str(path)!r} "
            f"({first}). A pickled model object cannot be loaded as weights; re-save it with "
            "torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(content, Mapping):
        for key in _CONTAINER_KEYS:
            if isinstance(content.get(key), Mapping):
                content = content[key]
                break
    if (
        not isinstance(content, Mapping)
        or not content
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in content.items())
    ):
        raise ValueError(
            f"checkpoint must hold a state dict (name → tensor), bare or under one of {_CONTAINER_KEYS}, "
            f"got {str(path)!r} with {type(content).__name__} content."
        )
    return dict(content)


def _strip_prefixes(state: dict[str, torch.Tensor], model_keys: set[str]) -> tuple[dict, dict[str, str]]:
    """Remove wrapper prefixes the model does not use; also return original key → new key."""
    origin = {key: key for key in state}
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
            state = {k[len(prefix) :]: v for k, v in state.items()}
            origin = {k[len(prefix) :]: o for k, o in origin.items()}
    return state, {o: k for k, o in origin.items() if o != k}


def _guess_architecture(keys: set[str]) -> str:
    for prefix, name in _SIGNATURES.items():
        if any(k.startswith(prefix) for k in keys):
            return name
    return "an unknown architecture"


def _output_layer(model: nn.Module) -> tuple[str, int] | None:
    """State-dict key of the last convolution's weight and the axis of its output channels."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            last = (f"{name}.weight", 0)
        elif isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            last = (f"{name}.weight", 1)
    return last


def _check_fit(model: nn.Module, state: dict[str, torch.Tensor], model_state: dict, path: Path) -> None:
    """Raise ``ValueError`` naming the cause when the checkpoint belongs to another model."""
    shared = set(state) & set(model_state)
    architecture = _guess_architecture(set(model_state))
    for embedding, key in _EMBEDDING_KEYS.items():
        if key in state and key not in model_state and any(k in model_state for k in _EMBEDDING_KEYS.values()):
            raise ValueError(
                f"pos_embed must match the checkpoint: {str(path)!r} was trained with pos_embed={embedding!r} "
                "(--pos_embed; MONAI's proj_type); build the model with that setting."
            )
    if len(shared) < 0.5 * len(model_state):
        raise ValueError(
            f"architecture must match the checkpoint: {str(path)!r} holds {_guess_architecture(set(state))} weights "
            f"({len(shared)} of the model's {len(model_state)} tensors found), but the model is {architecture} "
            "(--model_name / architecture)."
        )
    output = _output_layer(model)
    if output is not None and output[0] in shared:
        key, axis = output
        have, want = state[key].shape, model_state[key].shape
        if len(have) == len(want) and have[axis] != want[axis]:
            raise ValueError(
                f"num_classes must match the checkpoint: {str(path)!r} has {have[axis]} output classes, the model "
                f"was built with {want[axis]} (num_classes / --out_channels)."
            )
    differing = [k for k in sorted(shared) if state[k].shape != model_state[k].shape]
    if differing:
        key = differing[0]
        hint = "roi (UNETR position embeddings depend on it)" if "position_embeddings" in key else (
            "feature_size / hidden_size / mlp_dim / num_heads / channels / in_channels")  # fmt: skip
        raise ValueError(
            f"model settings must match the checkpoint {str(path)!r}: {len(differing)} tensors differ in shape, "
            f"e.g. {key}: checkpoint {tuple(state[key].shape)} vs model {tuple(model_state[key].shape)}; "
            f"check {hint}."
        )


def load_checkpoint(model: nn.Module, path: str | os.PathLike, *, strict: bool = False) -> LoadReport:
    """Load the weights stored at ``path`` into ``model`` (in place).

    Args:
        model: the network, built with the checkpoint's architecture and class count.
        path: checkpoint file (``.pt`` / ``.pth``).
        strict: raise when any model weight is missing or any checkpoint tensor is left over (known unused
            legacy keys excepted). Default False: load what fits, warn about the rest.

    Returns:
        A :class:`LoadReport`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a weights-only state dict; another architecture; another class count
            (``num_classes``); other layer sizes; with ``strict``, missing or unexpected keys.
    """
    path = Path(path)
    state = read_state_dict(path)
    model_state = model.state_dict()
    state, renamed = _strip_prefixes(state, set(model_state))
    ignored = [k for k in _DROPPED_LEGACY if k in state and k not in model_state]
    for key in ignored:
        state.pop(key)
    _check_fit(model, state, model_state, path)
    optional = [k for k in model_state if k not in state and k.endswith(_OPTIONAL_SUFFIXES)]
    ignored += optional
    missing = tuple(k for k in model_state if k not in state and k not in optional)
    unexpected = tuple(k for k in state if k not in model_state)
    report = LoadReport(missing=missing, unexpected=unexpected, renamed=renamed, ignored=tuple(ignored))
    if strict and not report.complete:
        raise ValueError(
            f"checkpoint must provide exactly the model's weights with strict=True, got {str(path)!r} with "
            f"{len(missing)} missing (e.g. {list(missing[:3])}) and {len(unexpected)} unexpected "
            f"(e.g. {list(unexpected[:3])}) keys."
        )
    model.load_state_dict({k: v for k, v in state.items() if k in model_state}, strict=False)
    if missing or unexpected:
        warnings.warn(
            f"checkpoint {path.name}: {len(missing)} model weights not in the file (kept at their initial values: "
            f"{list(missing[:3])}...), {len(unexpected)} file tensors unused ({list(unexpected[:3])}...).",
            stacklevel=2,
        )
    logger.info("Loaded %s (%d tensors, %d renamed, %d ignored).", path, len(state), len(renamed), len(ignored))
    return report


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write ``{"state_dict": model weights, **extra}`` to ``path`` atomically (temporary file + ``os.replace``).

    A (Distributed)DataParallel wrapper is unwrapped, so keys never carry ``module.``. ``extra`` values must be
    loadable with ``weights_only=True`` (tensors, numbers, strings, lists, dicts: optimiser and scheduler
    state dicts qualify).

    Raises:
        ValueError: ``extra`` uses the reserved key ``state_dict``.
    """
    if "state_dict" in extra:
        raise ValueError("extra must not contain the key 'state_dict', got it among the extra keys.")
    core = model.module if isinstance(getattr(model, "module", None), nn.Module) else model
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        torch.save({"state_dict": core.state_dict(), **extra}, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
