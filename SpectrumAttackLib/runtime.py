"""Device choice, seeding and the progress-callback type shared by every long-running job (``Progress`` lives in
the torch-free :mod:`SpectrumAttackLib.progress` and is re-exported here)."""

from __future__ import annotations

import torch

from SpectrumAttackLib.progress import Progress, ProgressCallback

__all__ = ["Progress", "ProgressCallback", "device_info", "make_generator", "resolve_device"]


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
