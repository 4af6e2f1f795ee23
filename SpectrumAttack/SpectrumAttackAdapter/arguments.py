"""Run settings of the Slicer front ends → engine arguments, in one place.

Three front ends name the settings of a run: the parameter node (and the Widget bound to it), the console API
(``SpectrumAttackLogic.run``) and the CLI module (the parameter names of ``SpectrumAttackCLI.xml``). The names,
types and defaults are the rows of the engine's table, ``SpectrumAttackLib.attacks.parameters``: the Slicer side
uses their camelCase ``slicer`` names, the console also accepts the engine names (``block_size``, ``beta``, ...).
:func:`engine_arguments` is the only function that turns them into engine arguments; it runs in the process that
does the work (the CLI process for the GUI, the console's process for ``run(wait=True)``). :func:`run_engine` is
the only call into the engine.

This module imports neither ``slicer`` nor ``torch`` at import time: the CLI process and the Widget import it
before the engine's dependencies are known to be installed.

Example:
    >>> args = engine_arguments({"model": "unet-btcv-3mm", "attack": "saa", "rho": 0.2, "blockSize": 32,
    ...                          "eps": 4}, strict=False)
    >>> args.params
    {'rho': 0.2, 'block_size': (32, 32, 32)}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.parameters import (
    GENERAL_SETTINGS,
    SLICER_PARAMETERS,
    Parameter,
    attack_ndim,
    by_engine,
    by_slicer,
    fit_block_size,
    parameters_of,
)
from SpectrumAttackLib.checks import check_choice, check_int

if TYPE_CHECKING:
    import numpy as np

    from SpectrumAttackLib.models import LoadedModel
    from SpectrumAttackLib.runtime import ProgressCallback
    from SpectrumAttackLib.workflows.single import SingleVolumeResult

__all__ = [
    "MODEL_SETTINGS",
    "EngineArguments",
    "engine_arguments",
    "run_engine",
    "summary_scalars",
]

#: Settings that choose the model and the attack (camelCase, as in the parameter node and the CLI); the other
#: settings are the rows of ``attacks.parameters``.
MODEL_SETTINGS = ("model", "attack", "architecture", "numClasses", "modelArguments")


@dataclass(frozen=True)
class EngineArguments:
    """Everything the engine needs for one run besides the image and the reference labels.

    Attributes:
        model: a catalogue name, a model path (checkpoint, TorchScript file or MONAI bundle folder) or a
            ``SpectrumAttackLib.models.LoadedModel``.
        attack: registry name (``attacks.available()``).
        params: keyword arguments of the attack, engine names and units, only those the attack accepts; ``seed``
            is kept apart.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: of the model passes: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``
            (``SpectrumAttackLib.precision``).
        seed: seed of the attack's random draws.
        architecture: ``unet``, ``unet-r``, ``swin-unetr`` or ``segresnet`` for checkpoint paths; None otherwise.
        num_classes: class count (background included) for checkpoint paths; None otherwise.
        model_arguments: extra ``build_model`` keyword arguments for checkpoint paths (e.g. small UNet channels).
        target_ssim: 0 attacks at the given budget; in (0, 1) the strongest budget keeping this 3-D SSIM.
    """

    model: Any
    attack: str
    params: dict[str, Any]
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    architecture: str | None = None
    num_classes: int | None = None
    model_arguments: dict[str, Any] = field(default_factory=dict)
    target_ssim: float = 0.0

    def load_model(self) -> LoadedModel:
        """The model as a ``LoadedModel`` (returned as is when it already is one)."""
        from SpectrumAttackLib.models import LoadedModel, load_model

        if isinstance(self.model, LoadedModel):
            return self.model
        return load_model(self.model, self.device, architecture=self.architecture, num_classes=self.num_classes,
                          **self.model_arguments)

    def cli_parameters(self) -> dict[str, Any]:
        """Parameters for ``slicer.cli.run`` of the CLI module (XML names), images excluded.

        Raises:
            ValueError: the run cannot go through the CLI module: a ``LoadedModel`` object, ``model_arguments``,
                or an attack parameter the CLI does not expose (e.g. ``beta``).
        """
        if not isinstance(self.model, (str, os.PathLike)):
            raise ValueError(f"model must be a catalogue name or a path to run in the background (wait=False), "
                             f"got a {type(self.model).__name__}.")
        if self.model_arguments:
            raise ValueError(f"modelArguments cannot be passed to the CLI module (wait=False), "
                             f"got {self.model_arguments!r}.")
        out: dict[str, Any] = {"model": os.fspath(self.model), "attack": self.attack, "device": self.device,
                               "precision": self.precision, "seed": self.seed}
        if self.architecture:
            out["architecture"] = self.architecture
        if self.num_classes:
            out["numClasses"] = self.num_classes
        for key, value in self.params.items():
            row = by_engine(key)
            if row is None or row.slicer is None:
                exposed = ", ".join(p.engine for p in SLICER_PARAMETERS if p.attacks is not None)
                raise ValueError(f"params for a background run (wait=False) must be among {exposed}, got {key!r}.")
            out[row.slicer] = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
        return out


def _setting(row: Parameter, values: dict[str, Any]) -> Any:
    """Pop a general setting given by its Slicer or engine name; its table default when absent."""
    for name in dict.fromkeys((row.slicer, row.engine)):
        if name in values:
            return row.parse(values.pop(name), name)
    return row.default


def engine_arguments(values: Mapping[str, Any], *, strict: bool) -> EngineArguments:
    """Turn front-end settings into :class:`EngineArguments` (the one conversion of the Slicer side).

    Args:
        values: settings by name: :data:`MODEL_SETTINGS` (``model`` and ``attack`` required), the general
            settings and the attack parameters of ``attacks.parameters`` by their Slicer or engine name, and (console)
            further keyword arguments of the attack by engine name. Values may be strings (CLI) or numbers.
            ``None`` values are ignored.
        strict: True for the console API: a parameter the attack does not accept raises. False for the Widget and
            the CLI, which hold a value for every parameter of the table: the ones the chosen attack does not take
            are dropped.

    Returns:
        The arguments, attack parameters in the engine's types and units (``eps`` and ``std`` stay on the 0–255
        scale, the attacks convert them); the block size fitted by ``fit_block_size``.

    Raises:
        ValueError: missing model, unknown attack, device or precision, negative seed, a value of the wrong kind,
            a name that is no parameter at all, or (strict) a parameter the attack does not accept. Values out of
            range are rejected later by the attack itself, with the engine's message.
    """
    values = {k: v for k, v in values.items() if v is not None}
    model = values.pop("model", None)
    if model is None or (isinstance(model, (str, os.PathLike)) and not os.fspath(model).strip()):
        raise ValueError(f"model must be a catalogue name, a model path or a LoadedModel, got {model!r}.")
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    attack = check_choice("attack", values.pop("attack", None), attacks.available())
    general = {row.engine: _setting(row, values) for row in GENERAL_SETTINGS}
    seed = check_int("seed", general.pop("seed"), 0)
    architecture = values.pop("architecture", None) or None
    num_classes = values.pop("numClasses", None)
    if num_classes is not None:
        try:
            num_classes = int(str(num_classes))
        except ValueError:
            raise ValueError(f"numClasses must be an integer, got {num_classes!r}.") from None
        num_classes = check_int("numClasses", num_classes, 0) or None
    model_arguments = dict(values.pop("modelArguments", None) or {})

    params: dict[str, Any] = {}
    for key, value in values.items():
        row = by_slicer(key) or by_engine(key)
        if row is not None and row.attacks is not None:
            if attack not in row.attacks:
                if strict:
                    allowed = ", ".join(k for k in attacks.attack_parameters(attack) if k != "seed")
                    raise ValueError(f"parameter {key} is not accepted by attack {attack!r}; allowed: {allowed}.")
                continue
            value = row.parse(value, key)
            if row.kind == "block":
                value = fit_block_size(value, attack_ndim(attack))
            params[row.engine] = value
            continue
        if strict:  # an engine keyword the table does not list (clip_input, random_start, ...)
            accepted = [k for k in attacks.attack_parameters(attack) if k != "seed"]
            if key in accepted:
                params[key] = value
                continue
            allowed = ", ".join(accepted)
        else:
            allowed = ", ".join(p.slicer or p.engine for p in parameters_of(attack))
        raise ValueError(f"parameter {key} is not accepted by attack {attack!r}; allowed: {allowed}.")
    return EngineArguments(model=model, attack=attack, params=params, device=general["device"],
                           precision=general["precision"], seed=seed,
                           architecture=architecture, num_classes=num_classes, model_arguments=model_arguments,
                           target_ssim=general["target_ssim"])


def run_engine(
    arguments: EngineArguments,
    array_ijk: np.ndarray,
    ijk_to_ras: np.ndarray,
    *,
    reference_labels: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    image_name: str = "inputVolume",
    labels_name: str = "referenceLabel",
) -> SingleVolumeResult:
    """Attack one volume given in its own grid: the call shared by the Logic (in-process) and the CLI module.

    Args:
        arguments: from :func:`engine_arguments`.
        array_ijk: the volume, ``[I, J, K]``, in its own intensity units (HU for CT); not modified.
        ijk_to_ras: ``[4, 4]`` IJK→RAS matrix of the volume (mm).
        reference_labels: optional ground truth ``[I, J, K]`` class ids on the same grid, for Dice and HD95;
            without it the clean prediction is the reference.
        progress: receives ``runtime.Progress`` reports.
        cancel: returns True to stop; the engine then raises ``SpectrumAttackLib.inference.tiles.Cancelled``.
        image_name, labels_name: the parameter names in error messages (the engine's checks,
            :mod:`SpectrumAttackLib.pipeline.validate`, run on both).

    Returns:
        The engine's ``SingleVolumeResult``: adversarial volume, perturbation and both segmentations on the input
        grid, metrics, classes.
    """
    from SpectrumAttackLib.workflows.single import attack_single_volume

    return attack_single_volume(
        (array_ijk, ijk_to_ras), model=arguments.load_model(), attack=arguments.attack, params=arguments.params,
        reference_labels=reference_labels, device=arguments.device, seed=arguments.seed,
        precision=arguments.precision, progress=progress, cancel=cancel, image_name=image_name,
        labels_name=labels_name, target_ssim=arguments.target_ssim,
    )


def summary_scalars(metrics: Mapping[str, Any], seconds: float) -> dict[str, float]:
    """The CLI's output scalars (camelCase, as in the XML) from an engine metrics dictionary.

    Missing or undefined values (no foreground, NaN) become ``nan``.
    """

    def number(section: str, key: str) -> float:
        value = metrics.get(section, {}).get(key)
        return float("nan") if value is None else float(value)

    return {
        "cleanDice": number("clean", "dice"),
        "adversarialDice": number("adversarial", "dice"),
        "ssim": number("adversarial", "ssim"),
        "psnr": number("adversarial", "psnr"),
        "foolingRate": number("adversarial", "fooling_rate"),
        "seconds": float(seconds),
    }
