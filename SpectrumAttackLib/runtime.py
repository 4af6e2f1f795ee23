"""Device choice, seeding and the progress-callback type shared by every long-running job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Progress", "ProgressCallback", "device_info", "make_generator", "resolve_device"]


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Attributes:
        done: units of work finished (attack steps, tiles, cases, epochs).
        total: units of work in the job.
        stage: a short name of what is running ("attack", "inference", "train").
        message: optional human-readable detail (current loss, case name).
    """

    done: int
    total: int
    stage: str = ""
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1]."""
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA when available, else CPU. MPS is used only when asked for: many 3D
    operations are missing or slow there.

    Raises:
        ValueError: the name is unknown, or CUDA/MPS is asked for but not available.
    """
    if isinstance(device, torch.device):
        return device
    name = "auto" if device is None else str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device must be 'auto' or 'cpu' on this machine (torch {torch.__version__} sees no CUDA GPU), "
                f"got {device!r}."
            )
        return torch.device(name)
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device must be 'auto' or 'cpu' on this machine (no MPS), got {device!r}.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', got {device!r}.")


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (never the global RNG)."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


def device_info() -> dict[str, object]:
    """Torch version, CUDA build and visible GPU, for display in the GUI and run manifests."""
    info: dict[str, object] = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpu": None,
        "gpu_memory_gib": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info
