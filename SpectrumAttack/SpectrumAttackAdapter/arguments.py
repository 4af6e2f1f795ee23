"""Run settings of the Slicer front ends → engine arguments, in one place.

Three front ends name the settings of a run: the parameter node (and the Widget bound to it), the console API
(``SpectrumAttackLogic.run``) and the CLI module (the parameter names of ``SpectrumAttackCLI.xml``). They all use
the camelCase names of :data:`ATTACK_PARAMETERS` and :data:`GENERAL_SETTINGS`; the console also accepts the
engine's own snake_case names (``block_size``, ``lambda_dice``, ``beta``, ...). :func:`engine_arguments` is the only
function that turns them into engine arguments, and :func:`run_engine` is the only call into the engine, used by
the Logic (in-process runs) and by the CLI module alike.

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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib import attacks
from SpectrumAttackLib.checks import check_choice, check_int

if TYPE_CHECKING:
    import numpy as np

    from SpectrumAttackLib.models import LoadedModel
    from SpectrumAttackLib.runtime import ProgressCallback
    from SpectrumAttackLib.workflows.single import SingleVolumeResult

__all__ = [
    "ATTACK_PARAMETERS",
    "DEVICES",
    "GENERAL_SETTINGS",
    "AttackParameter",
    "EngineArguments",
    "engine_arguments",
    "run_engine",
    "summary_scalars",
]

#: Device choices offered by the Widget and the CLI; ``cuda:N`` is accepted as well.
DEVICES = ("auto", "cpu", "cuda")

#: Settings that are not attack parameters (camelCase, as in the parameter node and the CLI).
GENERAL_SETTINGS = ("model", "attack", "device", "seed", "architecture", "numClasses", "modelArguments")


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    return bool(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _block_size(value: Any) -> tuple[int, ...]:
    """``32``, ``"32"``, ``"32,32,32"``, ``"32, 32, 32"`` (Slicer's list form) or a sequence → a tuple of ints."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value.strip()) if part]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        raise ValueError(value)
    return tuple(_integer(v) for v in value)


@dataclass(frozen=True)
class AttackParameter:
    """One attack parameter as the front ends name it.

    Attributes:
        name: camelCase name: parameter-node field, CLI long flag and CLI parameter name.
        engine: the keyword of the attack constructors (``attacks.attack_parameters``).
        convert: turns a front-end value (string from the CLI, number from the GUI) into the engine's type.
        kind: what ``convert`` expects, for error messages.
    """

    name: str
    engine: str
    convert: Callable[[Any], Any]
    kind: str


#: Every attack parameter the Widget and the CLI expose. Units as in the engine: ``eps`` and ``std`` on the seed's
#: 0–255 scale, ``alpha`` in [0, 1] intensity units.
ATTACK_PARAMETERS: tuple[AttackParameter, ...] = (
    AttackParameter("steps", "steps", _integer, "an integer"),
    AttackParameter("rho", "rho", float, "a number"),
    AttackParameter("blockSize", "block_size", _block_size, "an integer or a list of integers"),
    AttackParameter("lambdaDice", "lambda_dice", float, "a number"),
    AttackParameter("useSsimLoss", "use_ssim_loss", _boolean, "true or false"),
    AttackParameter("lambdaSsim", "lambda_ssim", float, "a number"),
    AttackParameter("freqBand", "freq_band", str, "a string"),
    AttackParameter("qMax", "q_max", float, "a number"),
    AttackParameter("vafaVariant", "variant", str, "a string"),
    AttackParameter("eps", "eps", float, "a number (0–255 scale)"),
    AttackParameter("alpha", "alpha", float, "a number"),
    AttackParameter("std", "std", float, "a number (0–255 scale)"),
)
_BY_NAME = {p.name: p for p in ATTACK_PARAMETERS}
_SEED = AttackParameter("seed", "seed", _integer, "an integer")
_NUM_CLASSES = AttackParameter("numClasses", "num_classes", _integer, "an integer")
_BY_ENGINE = {p.engine: p for p in ATTACK_PARAMETERS}


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
        seed: seed of the attack's random draws.
        architecture: ``unet``, ``unet-r`` or ``swin-unetr`` for checkpoint paths; None otherwise.
        num_classes: class count (background included) for checkpoint paths; None otherwise.
        model_arguments: extra ``build_model`` keyword arguments for checkpoint paths (e.g. small UNet channels).
    """

    model: Any
    attack: str
    params: dict[str, Any]
    device: str = "auto"
    seed: int = 0
    architecture: str | None = None
    num_classes: int | None = None
    model_arguments: dict[str, Any] = field(default_factory=dict)

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
                               "seed": self.seed}
        if self.architecture:
            out["architecture"] = self.architecture
        if self.num_classes:
            out["numClasses"] = self.num_classes
        for key, value in self.params.items():
            if key not in _BY_ENGINE:
                exposed = ", ".join(p.engine for p in ATTACK_PARAMETERS)
                raise ValueError(f"params for a background run (wait=False) must be among {exposed}, got {key!r}.")
            out[_BY_ENGINE[key].name] = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
        return out


def _convert(spec: AttackParameter, key: str, value: Any) -> Any:
    try:
        return spec.convert(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be {spec.kind}, got {value!r}.") from None


def _fit_block_size(block: tuple[int, ...], default: Any) -> tuple[int, ...]:
    """A cubic block given with another length than the attack's (``32,32,32`` for a 2-D attack) is broadcast."""
    ndim = len(default) if isinstance(default, (tuple, list)) else len(block)
    if len(block) != ndim and len(set(block)) == 1:
        return (block[0],) * ndim
    return block


def engine_arguments(values: Mapping[str, Any], *, strict: bool) -> EngineArguments:
    """Turn front-end settings into :class:`EngineArguments` (the one conversion of the Slicer side).

    Args:
        values: settings by name: the :data:`GENERAL_SETTINGS` (``model`` and ``attack`` required) and attack
            parameters, by their camelCase name (:data:`ATTACK_PARAMETERS`) or their engine name. Values may be
            strings (CLI) or numbers. ``None`` values are ignored.
        strict: True for the console API: a parameter the attack does not accept raises. False for the Widget and
            the CLI, which hold a value for every parameter of every attack: the ones the chosen attack does not
            take are dropped.

    Returns:
        The arguments, attack parameters converted to the engine's types and units (unchanged: ``eps`` and
        ``std`` stay on the 0–255 scale, the attacks convert them).

    Raises:
        ValueError: missing model, unknown attack or device, negative seed, a value of the wrong kind, a name that
            is no parameter at all, or (strict) a parameter the attack does not accept. Values out of range are
            rejected later by the attack itself, with the engine's message.
    """
    values = {k: v for k, v in values.items() if v is not None}
    model = values.pop("model", None)
    if model is None or (isinstance(model, (str, os.PathLike)) and not os.fspath(model).strip()):
        raise ValueError(f"model must be a catalogue name, a model path or a LoadedModel, got {model!r}.")
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    attack = check_choice("attack", values.pop("attack", None), attacks.available())
    device = str(values.pop("device", "auto"))
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', got {device!r}.")
    seed = check_int("seed", _convert(_SEED, "seed", values.pop("seed", 0)), 0)
    architecture = values.pop("architecture", None) or None
    num_classes = values.pop("numClasses", None)
    if num_classes is not None:
        num_classes = check_int("numClasses", _convert(_NUM_CLASSES, "numClasses", num_classes), 0) or None
    model_arguments = dict(values.pop("modelArguments", None) or {})

    accepted = attacks.attack_parameters(attack)
    params: dict[str, Any] = {}
    for key, value in values.items():
        spec = _BY_NAME.get(key) or _BY_ENGINE.get(key)
        engine_name = spec.engine if spec else key
        if engine_name == "seed":
            raise ValueError("params must not contain 'seed'; pass it as the seed setting.")
        if engine_name not in accepted:
            if spec is not None and not strict:
                continue
            allowed = ", ".join(k for k in accepted if k != "seed")
            raise ValueError(f"parameter {key} is not accepted by attack {attack!r}; allowed: {allowed}.")
        if spec is not None:
            value = _convert(spec, key, value)
        if engine_name == "block_size":
            value = _fit_block_size(value, accepted["block_size"])
        params[engine_name] = value
    return EngineArguments(model=model, attack=attack, params=params, device=device, seed=seed,
                           architecture=architecture, num_classes=num_classes, model_arguments=model_arguments)


def run_engine(
    arguments: EngineArguments,
    array_ijk: np.ndarray,
    ijk_to_ras: np.ndarray,
    *,
    reference_labels: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
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

    Returns:
        The engine's ``SingleVolumeResult``: adversarial volume, perturbation and both segmentations on the input
        grid, metrics, classes.
    """
    from SpectrumAttackLib.workflows.single import attack_single_volume

    return attack_single_volume(
        (array_ijk, ijk_to_ras), model=arguments.load_model(), attack=arguments.attack, params=arguments.params,
        reference_labels=reference_labels, device=arguments.device, seed=arguments.seed, progress=progress,
        cancel=cancel,
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
