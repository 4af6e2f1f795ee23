"""The one table of attack parameters and general run settings that every front end derives from (torch-free).

Each :class:`Parameter` row names a setting once: its engine keyword, its spelling on the ``spectrum-attack``
command line (the seed's flag where the seed has one) and in Slicer (parameter-node field, CLI-module flag and
``.ui`` binding), its type, its one default, the range the front ends offer, its unit and help text, and which
attacks take it. The front ends use the table as follows:

- ``spectrum-attack`` (``cli/args.py``): the attack flags it hands to the attacks and their choices come from
  here; the seed's flag list keeps its own spelling and is checked against this table by the tests.
- Slicer module: the parameter node's attack and run fields, their validators and widget ranges are generated
  from the rows with a ``slicer`` name; the Widget shows the rows :func:`parameters_of` the chosen attack.
- Slicer CLI module: its argparse is generated from the same rows; ``SpectrumAttackCLI.xml`` and the ``.ui`` file
  are static (Slicer reads them as files) and the tests compare them with the table row by row.

Adding a parameter is one row here plus its widget in the ``.ui`` file and its entry in the CLI-module XML
(and its flag in the seed list of ``cli/args.py`` if it is a seed flag); the tests enumerate the table and name
what is missing. Values from the front ends are converted once, by :meth:`Parameter.parse` in the process that
runs the attack. Block sizes follow one rule, :func:`fit_block_size`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from SpectrumAttackLib.precision import PRECISIONS

__all__ = [
    "ATTACK_PARAMETERS",
    "GENERAL_SETTINGS",
    "LOSS_NAMES",
    "PARAMETERS",
    "SLICER_PARAMETERS",
    "Parameter",
    "attack_ndim",
    "by_engine",
    "by_slicer",
    "fit_block_size",
    "parameters_of",
]

#: Types of the table: ``block`` is a DCT block size (one edge, or one entry per axis).
KINDS = ("int", "float", "bool", "choice", "block")

_SA2 = ("saa", "saa-2d")
_VAFA = ("vafa-3d", "vafa-2d")
_DFB = ("dfb", "dfb-2d")
_VOXEL_ITERATIVE = ("pgd", "bim", "segpgd", "cospgd")
_SSA = ("ssa-2d",)
_MOMENTUM = ("mi-fgsm", "vmi-fgsm")
_APGD = ("apgd",)
_OPTIMISED = (*_SA2, *_VAFA, *_VOXEL_ITERATIVE, *_SSA, *_MOMENTUM, *_APGD)
#: the losses of the ``loss`` row (:mod:`SpectrumAttackLib.attacks.voxel_losses`), the default first.
LOSS_NAMES = ("dice-ce", "ce", "masked-ce", "balanced-masked-ce", "js")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class Parameter:
    """One row of the table.

    Attributes:
        engine: keyword of the attack constructors (general settings: of the run, e.g. ``device``).
        kind: one of :data:`KINDS`.
        default: the one default of every front end. ``block``: one edge (cubic blocks), fitted to the attack's
            dimensionality by :func:`fit_block_size`. ``None``: the attack derives it (``q_min``).
        label: short label (Slicer's form row and CLI-module panel).
        help: one-sentence help (tooltips, XML descriptions, ``--help``).
        attacks: the attacks that take it, in the registry's order; ``None`` for a general setting of every run.
        flag: the ``spectrum-attack`` option string (the seed's spelling where the seed has the flag).
        slicer: camelCase name in Slicer (parameter-node field, CLI-module flag and parameter name, ``.ui``
            binding); ``None`` for settings offered only on the command line and the Python API.
        unit: unit of the value ("" when it has none).
        minimum, maximum: inclusive bounds the front ends offer (widgets, XML constraints); inside the range the
            engine accepts (the attacks check their exact bounds). ``block``: per entry.
        step, decimals: spin-box step and shown decimals.
        choices: allowed values of a ``choice``.
        pattern: a regular expression of further accepted values of a ``choice`` (``cuda:N`` for the device).
    """

    engine: str
    kind: str
    default: Any
    label: str
    help: str
    attacks: tuple[str, ...] | None
    flag: str
    slicer: str | None = None
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    decimals: int = 0
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    @property
    def dest(self) -> str:
        """The argparse destination of :attr:`flag` (``--vafa_variant`` → ``vafa_variant``)."""
        return self.flag.lstrip("-").replace("-", "_")

    def parse(self, value: Any, name: str | None = None) -> Any:
        """A front-end value (a string from a command line, a number or bool from a widget) in the engine's type.

        ``block`` values become a tuple of ints (fit it with :func:`fit_block_size`); ranges are left to the
        attacks, which check their exact bounds.

        Raises:
            ValueError: a value of the wrong type or an unknown choice; the message names ``name`` (default the
                Slicer name, else the engine name).
        """
        name = name or self.slicer or self.engine
        if value is None:
            if self.default is None:
                return None
            raise ValueError(f"{name} must be {self._expected()}, got None.")
        try:
            return _PARSERS[self.kind](self, value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {self._expected()}, got {value!r}.") from None

    def _expected(self) -> str:
        if self.kind == "choice":
            allowed = ", ".join(repr(c) for c in self.choices)
            return f"one of {allowed}" + (f" or match {self.pattern!r}" if self.pattern else "")
        return {"int": "an integer", "float": "a number", "bool": "true or false",
                "block": "an integer or a list of integers"}[self.kind]


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError(value)
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def _choice(parameter: Parameter, value: Any) -> str:
    text = str(value)
    if text in parameter.choices or (parameter.pattern and re.fullmatch(parameter.pattern, text)):
        return text
    raise ValueError(value)


def _block(value: Any) -> tuple[int, ...]:
    """``8``, ``"8"``, ``"8,8,8"``, ``"8, 8, 8"`` (Slicer's list form), ``"8 8 8"`` or a sequence → ints."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value.strip()) if part]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        raise ValueError(value)
    return tuple(_integer(v) for v in value)


_PARSERS = {
    "int": lambda p, v: _integer(v),
    "float": lambda p, v: _number(v),
    "bool": lambda p, v: _boolean(v),
    "choice": _choice,
    "block": lambda p, v: _block(v),
}

#: Attack parameters, in the order the front ends show them.
ATTACK_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("steps", "int", 20, "Steps", "Optimisation steps of the iterative attacks.", _OPTIMISED, "--steps",
              slicer="steps", minimum=1, maximum=1000, step=1),
    Parameter("rho", "float", 0.2, "ρ (rho)",
              "SA²: every non-DC DCT coefficient is scaled by a factor in [1 − ρ, 1 + ρ] (0 < ρ < 1); SSA: "
              "half-width of the random spectral mask of its augmentations.", (*_SA2, *_SSA),
              "--rho", slicer="rho", minimum=0.001, maximum=0.999, step=0.05, decimals=3),
    Parameter("block_size", "block", 8, "Block size",
              "Edge of the DCT blocks in voxels (cubic in 3-D, square for the 2-D attacks); a list gives one "
              "edge per axis.", (*_SA2, *_VAFA, *_SSA, *_DFB), "--block_size", slicer="blockSize", unit="voxels",
              minimum=2, maximum=128, step=1),
    Parameter("lambda_dice", "float", 0.01, "λ Dice",
              "SA²: weight of the segmentation (Dice + cross-entropy) term.", _SA2, "--lambda_dice",
              slicer="lambdaDice", minimum=0.001, maximum=100.0, step=0.01, decimals=3),
    Parameter("use_ssim_loss", "bool", False, "SSIM term",
              "SA² and VAFA: penalise structural dissimilarity (3-D SSIM) to keep the perturbation imperceptible.",
              (*_SA2, *_VAFA), "--use_ssim_loss", slicer="useSsimLoss"),
    Parameter("lambda_ssim", "float", 1.0, "λ SSIM", "SA² and VAFA: weight of the SSIM term.",
              (*_SA2, *_VAFA), "--lambda_ssim", slicer="lambdaSsim", minimum=0.0, maximum=100.0, step=0.05,
              decimals=3),
    Parameter("freq_band", "choice", "all", "Frequency band",
              "SA² and DFB: DCT band perturbed (SA²) or dropped (DFB): all, low, middle or high.",
              (*_SA2, *_DFB), "--freq_band", slicer="freqBand", choices=("all", "low", "middle", "high")),
    Parameter("q_max", "float", 20.0, "q max", "VAFA: largest quantisation step.", _VAFA, "--q_max",
              slicer="qMax", minimum=5.0, maximum=255.0, step=1.0, decimals=1),
    Parameter("variant", "choice", "code", "VAFA variant",
              "VAFA: code follows the reference implementation, paper the MICCAI 2023 paper.", _VAFA,
              "--vafa_variant", slicer="vafaVariant", choices=("code", "paper")),
    Parameter("eps", "float", 4.0, "ε (0–255)",
              "Voxel attacks and SSA: L∞ budget on the 0–255 scale of the intensity window (4 means 4/255).",
              ("pgd", "fgsm", "bim", "segpgd", "cospgd", *_SSA, *_MOMENTUM, *_APGD), "--eps", slicer="eps",
              unit="1/255 of the window", minimum=0.0, maximum=255.0, step=1.0, decimals=2),
    Parameter("alpha", "float", 0.01, "α (step)", "Voxel attacks: step size in [0, 1] intensity units.",
              _VOXEL_ITERATIVE, "--alpha", slicer="alpha", unit="[0, 1] intensity", minimum=0.0001, maximum=1.0,
              step=0.001, decimals=4),
    Parameter("num_spectrum_augs", "int", 10, "Spectrum augmentations",
              "SSA: spectrum augmentations (noise plus random spectral mask) whose gradients are averaged per step.",
              _SSA, "--num_spectrum_augs", slicer="numSpectrumAugs", minimum=1, maximum=100, step=1),
    Parameter("decay", "float", 1.0, "μ (momentum decay)",
              "MI-FGSM and VMI-FGSM: decay factor of the accumulated gradient (published 1.0; 0 gives I-FGSM).",
              _MOMENTUM, "--decay", slicer="decay", minimum=0.0, maximum=10.0, step=0.1, decimals=2),
    Parameter("vmi_samples", "int", 20, "VMI neighbours",
              "VMI-FGSM: neighbours sampled per step for the variance term (published 20).", ("vmi-fgsm",),
              "--vmi_samples", slicer="vmiSamples", minimum=1, maximum=100, step=1),
    Parameter("vmi_beta", "float", 1.5, "VMI β",
              "VMI-FGSM: neighbourhood radius in units of ε (published 1.5).", ("vmi-fgsm",), "--vmi_beta",
              slicer="vmiBeta", minimum=0.1, maximum=10.0, step=0.1, decimals=2),
    Parameter("std", "float", 4.0, "σ (0–255)",
              "Gaussian noise: standard deviation on the 0–255 scale of the intensity window.", ("gn",), "--std",
              slicer="std", unit="1/255 of the window", minimum=0.0, maximum=255.0, step=1.0, decimals=2),
    Parameter("q_min", "float", None, "q min",
              "VAFA: smallest quantisation step; default 5 for the code variant, 1 for the paper variant.", _VAFA,
              "--q_min", minimum=0.001, maximum=5.0),  # at most q max's minimum: every offered pair is valid
    Parameter("beta", "float", 0.1, "β", "SA²: sign-step size on the spectral factors ξ.", _SA2, "--beta",
              minimum=0.0001, maximum=1.0),
    Parameter("loss", "choice", "dice-ce", "Loss",
              "PGD, FGSM, BIM and APGD: the maximised loss: dice-ce (the reference's), ce, SEA's masked-ce (voxels "
              "still correct), balanced-masked-ce (class weights from the volume's label histogram) or js "
              "(Jensen-Shannon divergence to the labels).", ("pgd", "fgsm", "bim", *_APGD), "--loss",
              slicer="attackLoss", choices=LOSS_NAMES),
    Parameter("progressive_radius", "bool", False, "Progressive radius",
              "APGD: SEA's schedule, 30 % of the steps at 2ε, 30 % at 1.5ε, 40 % at ε.", _APGD,
              "--progressive_radius", slicer="progressiveRadius"),
    Parameter("targeted", "bool", False, "Targeted",
              "Push the prediction towards target label maps (Python API only: the command line has none).",
              (*_OPTIMISED, "fgsm"), "--targeted"),
    Parameter("restarts", "int", 1, "Restarts", "Independent attack runs; each case keeps the strongest.",
              _OPTIMISED, "--restarts", minimum=1, maximum=100),
    Parameter("early_stop", "bool", False, "Early stop",
              "Stop once every voxel is misclassified (the reference's rule).", _OPTIMISED, "--early_stop"),
)

#: Settings of every run (not attack parameters).
GENERAL_SETTINGS: tuple[Parameter, ...] = (
    Parameter("device", "choice", "auto", "Device",
              "auto uses a CUDA GPU when PyTorch sees one, else the CPU; cuda is the first visible GPU (set "
              "CUDA_VISIBLE_DEVICES to pick another).", None, "--device",
              slicer="device", choices=("auto", "cpu", "cuda"), pattern=r"cuda:\d+"),
    Parameter("seed", "int", 0, "Seed", "Seed of the attack's random draws; the same seed gives the same result.",
              None, "--seed", slicer="seed", minimum=0, maximum=2**31 - 1, step=1),
    Parameter("precision", "choice", "auto", "Precision",
              "Precision of the model passes: auto (bf16 on CPUs with AMX or AVX512-BF16 and on CUDA GPUs with bf16, "
              "else fp32), fp32 (bit-for-bit reproducible), bf16, or fp16 (CUDA GPUs only); the DCT, SSIM, losses "
              "and metrics always run in fp32.", None, "--precision", slicer="precision", choices=PRECISIONS),
    Parameter("target_ssim", "float", 0.0, "Target SSIM",
              "Find per volume the strongest budget (ε, ρ, q max or σ) whose image keeps a 3-D SSIM of at least this "
              "to the clean one, by bisection (a run up to 10 % too strong is scaled back onto it); 0 uses the "
              "budget as given.", None, "--target_ssim",
              slicer="targetSsim", minimum=0.0, maximum=0.9999, step=0.005, decimals=4),
)

#: Every row.
PARAMETERS: tuple[Parameter, ...] = (*ATTACK_PARAMETERS, *GENERAL_SETTINGS)
#: The rows Slicer offers (parameter node, ``.ui``, CLI module).
SLICER_PARAMETERS: tuple[Parameter, ...] = tuple(p for p in PARAMETERS if p.slicer)

_BY_ENGINE = {p.engine: p for p in PARAMETERS}
_BY_SLICER = {p.slicer: p for p in SLICER_PARAMETERS}


def by_engine(name: str) -> Parameter | None:
    """The row of engine keyword ``name`` (None when the table has none)."""
    return _BY_ENGINE.get(name)


def by_slicer(name: str) -> Parameter | None:
    """The row of Slicer name ``name`` (None when the table has none)."""
    return _BY_SLICER.get(name)


def parameters_of(attack: str) -> tuple[Parameter, ...]:
    """The attack parameters ``attack`` takes, in table order (no torch import)."""
    return tuple(p for p in ATTACK_PARAMETERS if attack in p.attacks)


def attack_ndim(attack: str) -> int:
    """2 for the slice-wise attacks (names ending in ``-2d``, the seed's convention), else 3."""
    return 2 if attack.endswith("-2d") else 3


def fit_block_size(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """The one block-size rule of every front end: a block size as ``ndim`` entries.

    One edge (an int or a one-entry list) is used on every axis; ``ndim`` entries are kept; a cubic three-entry
    size given to a 2-D attack (the seed's default ``8 8 8``, Slicer's ``8,8,8``) becomes the square of that edge.
    Anything else is returned as given, for the attack's own check to refuse with its message.

    Example:
        >>> fit_block_size(8, 3), fit_block_size((16, 16, 16), 2), fit_block_size((8, 4, 16), 3)
        ((8, 8, 8), (16, 16), (8, 4, 16))
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * ndim
    block = tuple(value)
    if len(block) == 1 or (len(block) == 3 and ndim == 2 and len(set(block)) == 1):
        return (block[0],) * ndim
    return block
