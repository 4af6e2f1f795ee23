"""Harden a model: adversarial fine-tuning (VAFT, adversarial or normal) on a few labelled volumes, written as a new
model folder. What ``spectrum-attack harden``, the Slicer module's ``logic.harden`` and its CLI module run.

Steps: check every argument → load the model (``models.load_model``: catalogue name, checkpoint, MONAI bundle or
nnU-Net v2 folder) → read and check every (image, labels) pair with the case pipeline's checks → map each to the
model grid (MONAI models: :mod:`~SpectrumAttackLib.inference.geometry`; nnU-Net: nnU-Net's own preprocessing,
:class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference`) → fine-tune with the one training loop
(:func:`SpectrumAttackLib.training.loop.train`, one optimiser step per "epoch" over random ROI crops held in memory,
:mod:`SpectrumAttackLib.training.memory`) → write the new model folder through the staged writer
(:class:`~SpectrumAttackLib.pipeline.staging.StagedFolder`: it appears whole, or not at all on failure or cancel).

The training objective is ``spectrum-attack train``'s: ``"vaft"`` = clean DiceCE + adversarial DiceCE + the
frequency-consistency regulariser, ``"adversarial"`` = adversarial DiceCE, ``"normal"`` = clean DiceCE; the
adversarial examples are made per batch against the current weights by any attack of the parameter table.
Optimiser AdamW (weight decay 1e-5), learning rate cosine-annealed from ``learning_rate`` to 0 over ``iterations``.
The hardened model is the weights after the last iteration (validation Dice is reported, not used to pick).

nnU-Net models: one fold is fine-tuned (``model_arguments={"folds": [k]}``, default the first fold with the
checkpoint) on crops of the plans' patch size, with the plans' normalisation as the model's first layer.
**Deep supervision is off**: the loss is taken on the full-resolution output only (the network as nnU-Net's
predictor builds it); the lower-resolution segmentation heads keep their weights. The result is a trained-model
folder nnU-Net's ``nnUNetPredictor`` loads (see :mod:`~SpectrumAttackLib.workflows.harden_outputs`).

Example:
    >>> result = harden([("ct.nii.gz", "seg.nii.gz")], "unet-btcv-3mm", iterations=40, output="hardened")
    >>> load_model(result.model_path)             # the bundle folder "hardened"
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import attack_ndim, fit_block_size
from SpectrumAttackLib.checks import check_choice, check_int, check_range
from SpectrumAttackLib.inference.tiles import Cancelled
from SpectrumAttackLib.io.volumes import Volume, read_volume
from SpectrumAttackLib.pipeline.staging import StagedFolder
from SpectrumAttackLib.pipeline.validate import check_blocks_fit_attack, check_image, check_labels, read_image
from SpectrumAttackLib.precision import resolve_precision
from SpectrumAttackLib.runtime import Progress, ProgressCallback, resolve_device
from SpectrumAttackLib.training.memory import CropBatches, MemoryCase, WholeCases
from SpectrumAttackLib.workflows.model_grid import model_grid, model_preprocessing

__all__ = ["MODES", "HardenResult", "harden", "resolve_pairs"]

#: training modes, as ``spectrum-attack train`` names them.
MODES = ("vaft", "adversarial", "normal")
#: relative tolerance under which an image's and its labels' IJK→RAS matrices count as one grid.
_GRID_TOLERANCE = 1e-4


@dataclass(frozen=True)
class HardenResult:
    """What :func:`harden` returns.

    Attributes:
        model_path: the new model folder (a MONAI bundle or an nnU-Net trained-model folder), loadable by
            ``models.load_model(model_path)``.
        model_kind: ``"bundle"`` or ``"nnunet"``.
        history: one dict per iteration: ``iteration``, ``loss``, ``loss_clean``, ``loss_adversarial``,
            ``loss_freq`` (None where the mode has no such term), ``lr``, ``val_dice`` (mean validation Dice over
            the organs, None where not validated) and ``seconds``.
        manifest: ``model_path/manifest.json`` (arguments, versions, seed, history).
        seconds: wall-clock time of the call.
    """

    model_path: Path
    model_kind: str
    history: list[dict[str, Any]] = field(default_factory=list)
    manifest: Path | None = None
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------- inputs
def _has_training_list(path: Path) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError):
        return False
    return isinstance(content, dict) and isinstance(content.get("training"), list)


def _split_file(value: Path, name: str) -> Path:
    """The split json of ``value`` (the file itself, or the one split json in a dataset folder)."""
    if value.is_file():
        return value
    if value.is_dir():
        found = [p for p in sorted(value.glob("*.json")) if p.is_file() and _has_training_list(p)]
        if len(found) == 1:
            return found[0]
        raise ValueError(f"{name} must be a split json or a dataset folder holding one split json (with a 'training' "
                         f"list), got {str(value)!r} with {len(found)} ({', '.join(p.name for p in found)}).")
    raise FileNotFoundError(f"{name} must be a split json, a dataset folder or (image, labels) pairs, got "
                            f"{str(value)!r} (no such file or folder).")


def resolve_pairs(value: Any, name: str, key: str) -> list[tuple[Any, Any]]:
    """``(image, labels)`` pairs from a sequence of pairs, a split json or a dataset folder.

    Args:
        value: pairs (each item a Volume, array/affine pair or path, and labels: a Volume, an array or a path), or
            the path of a split json / dataset folder (``spectrum-attack train``'s layout: ``{"training":
            [{"image": ..., "label": ...}], "validation": [...]}`` with paths relative to the json's folder).
        name: the parameter named in messages (``"training"``, ``"validation"``).
        key: the list read from a split file.

    Raises:
        ValueError: no pairs, an entry that is not a pair, a split list without labels.
        FileNotFoundError: a split path or a listed file that does not exist.
    """
    from SpectrumAttackLib.data.datalist import load_datalist

    if isinstance(value, (str, os.PathLike)):
        split = _split_file(Path(value).expanduser(), name)
        entries = load_datalist(split.parent, split, key)
        unlabelled = [e["image"] for e in entries if "label" not in e]
        if unlabelled:
            raise ValueError(f"{name} must list a 'label' for every image of {key!r} in {split.name}, got "
                             f"{unlabelled[0]!r} without one.")
        return [(e["image"], e["label"]) for e in entries]
    if value is None or isinstance(value, (bytes, Mapping)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of (image, labels) pairs, a split json or a dataset folder, "
                        f"got {type(value).__name__}.")
    pairs = list(value)
    if not pairs:
        raise ValueError(f"{name} must hold at least one (image, labels) pair, got none.")
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name}[{index}] must be an (image, labels) pair, got {type(pair).__name__}.")
    return [tuple(p) for p in pairs]


def _read_pair(pair: tuple[Any, Any], where: str, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, labels, affine)`` checked: a finite 3-D image; labels of its grid with the model's classes."""
    image, labels = pair
    image_name, labels_name = f"{where} image", f"{where} labels"
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, image_name)
    if hasattr(image, "array") and hasattr(image, "affine"):
        array, affine = image.array, np.asarray(image.affine, dtype=np.float64)
    else:
        raise TypeError(f"{image_name} must be a Volume or a NIfTI/NRRD path, got {type(image).__name__}.")
    array = check_image(image_name, array)
    if isinstance(labels, (str, os.PathLike)):
        labels = read_volume(labels, name=labels_name)
    if isinstance(labels, Volume) or (hasattr(labels, "array") and hasattr(labels, "affine")):
        label_affine = np.asarray(labels.affine, dtype=np.float64)
        if tuple(np.shape(labels.array)) == tuple(array.shape) and not np.allclose(
                label_affine, affine, rtol=_GRID_TOLERANCE, atol=_GRID_TOLERANCE * 10):
            raise ValueError(f"{labels_name} must lie on the image's grid (the image's IJK→RAS matrix), got another "
                             f"placement (origin {np.round(label_affine[:3, 3], 2).tolist()} mm vs "
                             f"{np.round(affine[:3, 3], 2).tolist()} mm, or other spacing/directions).")
        labels = labels.array
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return array, check_labels(labels_name, labels, array.shape, num_classes), affine


def _memory_case(grid: Any, array: np.ndarray, labels: np.ndarray, affine: np.ndarray, name: str) -> MemoryCase:
    """One checked pair in the model grid of ``grid`` (:func:`~SpectrumAttackLib.workflows.model_grid.model_grid`:
    nnU-Net's preprocessing for nnU-Net models, else the geometry mapping of the model's preprocessing)."""
    images, mapping = grid.to_model_grid(array, affine)
    model_labels = grid.labels_to_model_grid(labels, mapping).long()
    intensity = getattr(getattr(grid, "model", None), "intensity", None)  # nnU-Net: pad with normalised 0
    pad = intensity.normalised_zero() if intensity is not None else float(mapping.b_min)
    return MemoryCase(images, model_labels, pad_value=pad, prepare=lambda: grid.use(mapping), name=name)


# ------------------------------------------------------------------------------------------------- model
def _nnunet_fold(path: Path, arguments: dict[str, Any]) -> dict[str, Any]:
    """nnU-Net loading arguments with exactly one fold (default: the first fold with the checkpoint)."""
    from SpectrumAttackLib.models.nnunet import CHECKPOINTS, _available_folds

    checkpoint = arguments.get("checkpoint") or "final"
    folds = arguments.get("folds")
    if folds is None:
        available = _available_folds(path, CHECKPOINTS.get(checkpoint, "checkpoint_final.pth"))
        folds = available[:1] or None
    elif isinstance(folds, (str, int)):
        folds = [folds]
    if folds is not None and len(list(folds)) != 1:
        raise ValueError(f"model_arguments['folds'] must name one fold to fine-tune (harden each fold in its own "
                         f"run), got {list(folds)!r}.")
    return {**arguments, "folds": folds, "checkpoint": checkpoint}


def _load(model: Any, device: torch.device, arguments: dict[str, Any]) -> tuple[Any, str, Path | None]:
    """``(LoadedModel, kind, source folder)``; kind ``"nnunet"``, ``"bundle"`` (a bundle's copy) or ``"new"``."""
    from SpectrumAttackLib.models import load_model
    from SpectrumAttackLib.models.nnunet import is_nnunet_folder
    from SpectrumAttackLib.models.user_models import is_bundle, is_torchscript

    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a catalogue name or a model path, got {type(model).__name__}.")
    path = Path(model).expanduser()
    if path.is_dir() and not is_bundle(path) and is_nnunet_folder(path):
        return load_model(path, device, **_nnunet_fold(path, arguments)), "nnunet", path.resolve()
    scripted = (path.is_file() and is_torchscript(path)) or (
        path.is_dir() and is_bundle(path) and not (path / "models" / "model.pt").is_file())
    if scripted:
        raise ValueError(f"model must be a catalogue name, a checkpoint, a MONAI bundle with models/model.pt or an "
                         f"nnU-Net folder to be fine-tuned, got the TorchScript model {str(path)!r} (its weights "
                         f"cannot be saved back as a state dict).")
    loaded = load_model(model, device, **arguments)
    if path.is_dir():
        return loaded, "bundle", path.resolve()
    return loaded, "new", None


def _check_params(mode: str, attack: str, params: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """The attack and its engine parameters (block size fitted to the attack), checked against its signature."""
    if mode == "normal":
        return None, {}
    check_choice("attack", attack, attacks.available())
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of attack parameters, got {type(params).__name__}.")
    params = dict(params or {})
    for reserved in ("seed", "precision"):
        if reserved in params:
            raise ValueError(f"params must not contain {reserved!r} (harden's own {reserved} applies to every "
                             f"attack), got {params[reserved]!r}.")
    accepted = attacks.attack_parameters(attack)
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise ValueError(f"params must hold parameters of attack {attack!r} ({', '.join(sorted(accepted))}), got "
                         f"{unknown[0]!r}.")
    if "block_size" in params and params["block_size"] is not None:
        params["block_size"] = fit_block_size(params["block_size"], attack_ndim(attack))
    return attack, params


def _inputs_of(model: Any, *groups: Sequence[tuple[Any, Any]]) -> list[Path]:
    paths = [Path(model).expanduser().absolute()] if isinstance(model, (str, os.PathLike)) else []
    for pairs in groups:
        paths += [Path(v).expanduser().absolute() for pair in pairs for v in pair if isinstance(v, (str, os.PathLike))]
    return paths


def _check_output(output: Any, inputs: Sequence[Path]) -> Path:
    if not isinstance(output, (str, os.PathLike)) or not str(output):
        raise ValueError(f"output must be a folder path for the hardened model, got {output!r}.")
    target = Path(output).expanduser().absolute()
    for path in inputs:
        if path.exists() and (path == target or target in path.parents or path in target.parents):
            raise ValueError(f"output must be a new folder apart from the inputs (they are never modified), got "
                             f"{str(target)!r}, which {'is' if path == target else 'overlaps'} {str(path)!r}.")
    return target


# ------------------------------------------------------------------------------------------------- the job
def harden(
    training: Any,
    model: Any,
    *,
    mode: str = "vaft",
    attack: str = "vafa-3d",
    params: Mapping[str, Any] | None = None,
    iterations: int = 100,
    validation: Any = None,
    output: str | os.PathLike,
    device: str | torch.device = "auto",
    precision: str = "auto",
    seed: int = 0,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    model_arguments: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    learning_rate: float = 1e-4,
    crops: int = 2,
    val_every: int | None = None,
) -> HardenResult:
    """Fine-tune ``model`` on ``training`` (adversarially by default) and write the hardened model to ``output``.

    Args:
        training: ``(image, labels)`` pairs: each image a :class:`~SpectrumAttackLib.io.volumes.Volume` (IJK array +
            IJK→RAS matrix) or a NIfTI/NRRD path, each labels a Volume on the image's grid, an ``[I, J, K]`` array or
            a path; or a split json / dataset folder (``spectrum-attack train``'s layout, its ``"training"`` list).
            Never modified.
        model: a catalogue name, a checkpoint (with ``model_arguments`` ``architecture``, ``num_classes``...), a
            MONAI bundle folder or an nnU-Net v2 trained-model folder (see ``models.load_model``).
        mode: ``"vaft"`` (clean + adversarial DiceCE + frequency regulariser), ``"adversarial"`` or ``"normal"``.
        attack: the attack making the adversarial examples (any name of ``attacks.available()``).
        params: its parameters, engine names and units (``eps`` on the 0–255 scale); defaults the table's.
        iterations: optimiser steps, ≥ 1.
        validation: pairs as ``training`` (or a split json / folder: its ``"validation"`` list); ``None`` uses the
            ``"validation"`` list when ``training`` is a split file that has one, else validates nothing (as does
            an empty list).
        output: the new model folder; refused when it exists with content unless ``overwrite``, or when it is (or
            overlaps) an input.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        precision: of the model passes (``SpectrumAttackLib.precision``).
        seed: seeds crops, attack starts and the training's random draws.
        progress: called with ``Progress(done, total, "train", message)`` after every iteration (message: the
            iteration, its loss and the ETA) and after each validation (its mean Dice); ``"load"`` and ``"write"``
            stages before and after.
        should_stop: polled before every iteration and between cases; True stops with ``Cancelled`` and leaves
            nothing behind.
        model_arguments: extra ``load_model`` keywords (``architecture``, ``num_classes``, ``roi``, ``folds``,
            ``checkpoint``, ``trust_code``...).
        overwrite: replace an existing ``output``.
        learning_rate: AdamW's initial learning rate, cosine-annealed to 0 (> 0).
        crops: ROI crops per iteration (one case per iteration), ≥ 1.
        val_every: validate every this many iterations (and at the last one); default a quarter of the run.

    Returns:
        :class:`HardenResult`.

    Raises:
        ValueError: a bad argument, no pairs, labels with classes the model lacks, labels off their image's grid,
            an existing output, a TorchScript model, several nnU-Net folds.
        FileNotFoundError: a model, split or data file that does not exist.
        Cancelled: ``should_stop()`` returned True.
    """
    from SpectrumAttackLib.training.config import TrainConfig
    from SpectrumAttackLib.training.loop import train

    start = time.perf_counter()
    mode = check_choice("mode", mode, MODES)
    iterations = check_int("iterations", iterations, 1)
    seed = check_int("seed", seed, 0)
    crops = check_int("crops", crops, 1)
    learning_rate = check_range("learning_rate", learning_rate, 0.0, None, low_inclusive=False)
    val_every = max(1, iterations // 4) if val_every is None else check_int("val_every", val_every, 1)
    if should_stop is not None and not callable(should_stop):
        raise TypeError(f"should_stop must be callable or None, got {should_stop!r}.")
    if model_arguments is not None and not isinstance(model_arguments, Mapping):
        raise TypeError(f"model_arguments must be a mapping of load_model keywords, got "
                        f"{type(model_arguments).__name__}.")
    attack_name, attack_params = _check_params(mode, attack, params)
    train_pairs = resolve_pairs(training, "training", "training")
    if validation is None and isinstance(training, (str, os.PathLike)):
        split = _split_file(Path(training).expanduser(), "training")
        has_validation = isinstance(json.loads(split.read_text(encoding="utf-8")).get("validation"), list)
        val_pairs = resolve_pairs(training, "training", "validation") if has_validation else []
    else:
        empty = validation is None or (isinstance(validation, (list, tuple)) and not validation)
        val_pairs = [] if empty else resolve_pairs(validation, "validation", "validation")
    target = _check_output(output, _inputs_of(model, train_pairs, val_pairs))
    torch_device = resolve_device(device)
    resolve_precision(precision, torch_device)  # fp16 on a CPU is refused before any work

    def stop_point(stage: str) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled(f"hardening cancelled before {stage}")

    def report(stage: str, message: str) -> None:
        if progress is not None:
            progress(Progress(0, iterations, stage, message))

    with StagedFolder(target, "output", overwrite) as staged:
        report("load", f"loading {model}")
        loaded, kind, source = _load(model, torch_device, dict(model_arguments or {}))
        entry, network = loaded.entry, loaded.model
        roi = tuple(int(r) for r in entry.preprocessing.roi)
        if attack_name is not None:
            attacks.create(attack_name, network, **attack_params)  # the attack's own checks, before any data
            check_blocks_fit_attack(attack_params.get("block_size"), roi, None, "tiles")
        grid = model_grid(network, entry, model_preprocessing(entry), 0.5, resolve_precision(precision, torch_device))
        cases: dict[str, list[MemoryCase]] = {"training": [], "validation": []}
        for group, pairs in (("training", train_pairs), ("validation", val_pairs)):
            for index, pair in enumerate(pairs):
                stop_point(f"reading {group}[{index}]")
                where = f"{group}[{index}]"
                report("load", f"reading {where}")
                array, labels, affine = _read_pair(pair, where, entry.num_classes)
                cases[group].append(_memory_case(grid, array, labels, affine, where))
        stop_point("training")
        config = TrainConfig(
            max_epochs=iterations, val_every=val_every, batch_size=crops, optim_name="adamw", optim_lr=learning_rate,
            lrschedule="cosine_anneal", warmup_epochs=0, precision=precision, save_checkpoint=False,
            save_model_dir=staged.root, adv_training_mode=mode != "normal", freq_reg_mode=mode == "vaft",
            attack_name=attack_name, attack_params=attack_params, roi=roi, seed=seed,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="val_cases is empty")
            result = train(network, CropBatches(cases["training"], roi, crops, seed), WholeCases(cases["validation"]),
                           config, device=torch_device, progress=progress, should_stop=should_stop,
                           unit="iteration")  # fmt: skip
        network.eval()
        stop_point("writing")
        report("write", f"writing {target}")
        history = [_history_row(r) for r in result.history]
        record = {"mode": mode, "attack": attack_name, "params": _plain(attack_params), "iterations": iterations,
                  "learning_rate": learning_rate, "crops": crops, "seed": seed, "source": str(model),
                  "deep_supervision": False if kind == "nnunet" else None}
        model_kind = _write(kind, source, staged.root, loaded, record, mode)
        manifest = _manifest(staged.root, model, record, entry, kind, history, val_every, precision, device,
                             len(train_pairs), len(val_pairs))
        folder = staged.commit()
    return HardenResult(model_path=folder, model_kind=model_kind, history=history, manifest=folder / manifest.name,
                        seconds=time.perf_counter() - start)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (json and ``weights_only`` checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _history_row(record: Any) -> dict[str, Any]:
    row = {"iteration": record.epoch, **{k: v for k, v in vars(record).items() if k != "epoch"}}
    if row["val_dice"] is not None and np.isnan(row["val_dice"]):
        row["val_dice"] = None
    return row


def _write(kind: str, source: Path | None, root: Path, loaded: Any, record: dict[str, Any], mode: str) -> str:
    from SpectrumAttackLib.workflows.harden_outputs import write_bundle_copy, write_new_bundle, write_nnunet_folder

    if kind == "nnunet":
        from SpectrumAttackLib.models.nnunet import CHECKPOINTS

        arguments = loaded.entry.arguments
        assert source is not None
        write_nnunet_folder(source, root, str(arguments["folds"][0]), CHECKPOINTS[arguments["checkpoint"]],
                            loaded.model.networks[0], record)
        return "nnunet"
    if kind == "bundle":
        assert source is not None
        write_bundle_copy(source, root, loaded.model)
        return "bundle"
    entry = loaded.entry
    write_new_bundle(root, loaded.model, entry, f"{Path(entry.name).stem}-{mode}",
                     f"{entry.name} fine-tuned by SpectrumAttack harden ({mode}, attack {record['attack']}, "
                     f"{record['iterations']} iterations). {entry.description}".strip())
    return "bundle"


def _manifest(root: Path, model: Any, record: dict[str, Any], entry: Any, kind: str, history: list[dict[str, Any]],
              val_every: int, precision: str, device: Any, n_train: int, n_val: int) -> Path:
    from SpectrumAttackLib.io.hashing import sha256_file
    from SpectrumAttackLib.report.manifest import write_manifest

    weights = entry.weights_path if entry.weights else None
    digest = sha256_file(weights) if weights is not None and weights.is_file() else None
    arguments = {**record, "model": str(model), "val_every": val_every, "precision": precision, "device": str(device),
                 "training_cases": n_train, "validation_cases": n_val}
    return write_manifest(root, command="harden", arguments=arguments, seed=record["seed"], weights_sha256=digest,
                          extra={"source_kind": kind, "source_model": entry.provenance or entry.name,
                                 "history": history})
