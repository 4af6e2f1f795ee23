"""Numeric precision of the model passes: ``auto``, ``fp32``, ``bf16`` or ``fp16``, resolved once per run.

Only the network's forward pass (and, through autograd, its backward pass) runs under ``torch.autocast``; the
attacked variable, the block DCT, SSIM, the losses and the metrics stay float32, and the logits are cast to
float32 before any loss sees them (:func:`SpectrumAttackLib.attacks.base.forward_logits`).

``auto`` picks bf16 where the hardware computes it natively: CPUs with AMX or AVX512-BF16 (Intel Sapphire Rapids and
later, AMD Zen 4 and later) and CUDA GPUs that support bf16 (Ampere and later); fp32 everywhere else. ``fp16`` runs
only on CUDA (training adds a gradient scaler). ``fp32`` gives bit-for-bit the numbers of a run without autocast.

This module imports torch only inside its functions, so the front ends can list the choices without torch.

Example:
    >>> precision = resolve_precision("auto", torch.device("cpu"))
    >>> precision.name                       # "bf16" on a CPU with AMX/AVX512-BF16, else "fp32"
    >>> with precision.autocast():
    ...     output = model(images)
"""

from __future__ import annotations

import platform
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib.checks import check_choice

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "Precision", "check_precision", "cpu_bf16_features", "resolve_precision"]

#: Accepted values of every ``precision`` setting, the default first.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

#: CPU feature flags (Linux ``/proc/cpuinfo`` spelling) that make bf16 matrix products native.
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def check_precision(precision: Any, name: str = "precision") -> str:
    """The precision name in lower case; ``ValueError`` naming ``name`` unless it is one of :data:`PRECISIONS`."""
    value = precision.strip().lower() if isinstance(precision, str) else precision
    if value not in PRECISIONS:
        check_choice(name, precision, PRECISIONS)  # raises, naming the setting and the choices
    return value


def _linux_cpu_flags() -> set[str]:
    """Feature flags of the first CPU in ``/proc/cpuinfo`` (empty where the file is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


@lru_cache(maxsize=1)
def cpu_bf16_features() -> tuple[str, ...]:
    """The native-bf16 features of this CPU (``"amx_bf16"``, ``"avx512_bf16"``); empty when it has none.

    Asks torch's own CPU probe (cpuinfo, which works on Linux, Windows and macOS on x86) and, on Linux, also the
    kernel's ``/proc/cpuinfo`` flags, which additionally say that the kernel enabled the feature. Non-x86 CPUs
    report none: torch's CPU autocast has no fast bf16 kernels there.
    """
    import torch

    found: set[str] = set()
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        probes = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
        for feature, probe in probes:
            check = getattr(torch.cpu, probe, None)
            if check is not None and check():
                found.add(feature)
        if platform.system() == "Linux":
            flags = _linux_cpu_flags()
            if flags:  # the kernel's view wins: a feature it did not enable cannot be used
                found = {f for f in _BF16_FLAGS if f in flags}
    return tuple(f for f in _BF16_FLAGS if f in found)


@dataclass(frozen=True)
class Precision:
    """A resolved precision for one device.

    Attributes:
        requested: what was asked for (one of :data:`PRECISIONS`).
        name: what runs: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device_type: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        reason: why ``name`` was chosen, in words (for logs, manifests and benchmark output).
    """

    requested: str
    name: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (``torch.float32`` for fp32, which runs without autocast)."""
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    @property
    def mixed(self) -> bool:
        """Whether the model passes run under autocast (bf16 or fp16)."""
        return self.name != "fp32"

    def autocast(self) -> AbstractContextManager:
        """Context for the model's forward pass: autocast to :attr:`dtype`, or autocast switched off for fp32.

        Switched off (rather than left alone) so that fp32 stays fp32 inside a caller's own autocast region.
        """
        import torch

        if not self.mixed:
            return torch.autocast(self.device_type, enabled=False)
        return torch.autocast(self.device_type, dtype=self.dtype)

    def as_record(self) -> dict[str, str]:
        """``{"precision": requested, "precision_used": name}`` for manifests, metrics and results."""
        return {"precision": self.requested, "precision_used": self.name}


def resolve_precision(precision: str | Precision = "auto", device: torch.device | str = "cpu", *,
                      name: str = "precision") -> Precision:
    """Resolve ``precision`` for ``device``.

    Args:
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (case-insensitive), or an already resolved
            :class:`Precision` (returned as is when it was resolved for the same device type).
        device: where the model runs.
        name: the setting's name in error messages (``"--precision"`` on the command line).

    Returns:
        The resolved :class:`Precision`.

    Raises:
        ValueError: an unknown name; ``fp16`` off CUDA; ``bf16`` on a CUDA GPU without bf16 or on MPS; a
            :class:`Precision` resolved for another device type.

    Warns:
        UserWarning: ``bf16`` asked for on a CPU without native bf16 (it runs, emulated and slower than fp32).
    """
    import torch

    device_type = torch.device(device).type
    if isinstance(precision, Precision):
        if precision.device_type != device_type:
            raise ValueError(f"{name} must be resolved for the model's device ({device_type}), got one resolved "
                             f"for {precision.device_type}.")
        return precision
    requested = check_precision(precision, name)
    if device_type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return Precision(requested, "bf16" if bf16_ok else "fp32", device_type,
                             "CUDA GPU with bf16" if bf16_ok else "CUDA GPU without bf16")
        if requested == "bf16" and not bf16_ok:
            raise ValueError(f"{name} must be 'auto', 'fp32' or 'fp16' on this CUDA GPU (it has no bf16), "
                             f"got 'bf16'.")
        return Precision(requested, requested, device_type, "asked for")
    if requested == "fp16":
        raise ValueError(f"{name} must be 'auto', 'fp32' or 'bf16' on {device_type} (fp16 runs on CUDA GPUs "
                         f"only), got 'fp16'.")
    if device_type != "cpu":
        if requested == "bf16":
            raise ValueError(f"{name} must be 'auto' or 'fp32' on {device_type}, got 'bf16'.")
        return Precision(requested, "fp32", device_type, f"{device_type}: fp32 only")
    features = cpu_bf16_features()
    if requested == "auto":
        if features:
            return Precision(requested, "bf16", device_type, f"CPU with native bf16 ({', '.join(features)})")
        return Precision(requested, "fp32", device_type, "CPU without native bf16 (no AMX or AVX512-BF16)")
    if requested == "bf16" and not features:
        warnings.warn(f"{name} 'bf16' on a CPU without AMX or AVX512-BF16 is emulated and slower than fp32.",
                      UserWarning, stacklevel=2)
    return Precision(requested, requested, device_type, "asked for")
