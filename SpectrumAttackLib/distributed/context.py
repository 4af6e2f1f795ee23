"""Which process this is in a distributed run, and the process group behind it.

Two ways to start a run over several processes, both ending in one :class:`DistContext` per process:

- **torchrun** (recommended; also under SLURM's ``srun``): ``torchrun --nproc_per_node N ...`` sets ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every process. When ``RANK`` and
  ``WORLD_SIZE`` are present they win: ``--distributed``, ``--world_size``, ``--rank`` and ``--dist-url`` are then
  ignored (with a warning when they were given).
- **the seed's flags** (``run_normal_or_adv_training.py`` semantics): ``--distributed`` starts one process per CUDA
  GPU of this node (one process on a CPU-only node); ``--world_size`` is the number of *nodes* and ``--rank`` this
  node's index, so the run has ``world_size × GPUs`` processes and process ``g`` of node ``r`` has global rank
  ``r × GPUs + g``; every process meets the others at ``--dist-url`` (``tcp://host:port`` of node 0).

``--dist-backend`` picks ``nccl`` (the seed's default) or ``gloo``. NCCL needs CUDA tensors, so a run on the CPU uses
gloo whatever the flag says (with a warning). On CUDA, process ``local_rank`` uses GPU ``local_rank`` (modulo the
GPUs it can see, so one visible GPU per process also works). A run of one process builds no process group.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from SpectrumAttackLib.checks import check_choice, check_int
from SpectrumAttackLib.runtime import resolve_device

__all__ = ["BACKENDS", "DistContext", "cleanup", "init_distributed", "processes_per_node", "resolve_context"]

logger = logging.getLogger(__name__)

#: process-group backends accepted by ``--dist-backend``.
BACKENDS = ("nccl", "gloo")
#: how long a collective waits for the other ranks before the run fails.
TIMEOUT = timedelta(minutes=30)
_TORCHRUN_KEYS = ("RANK", "WORLD_SIZE")
#: the seed's flags for a ``--distributed`` run: argparse dest → (option, default).
_SEED_FLAGS = {
    "world_size": ("--world_size", 1),
    "rank": ("--rank", 0),
    "dist_url": ("--dist-url", "tcp://127.0.0.1:23456"),
}
_URL_SCHEMES = ("tcp://", "env://", "file://")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run.

    Attributes:
        rank: global rank in ``[0, world_size)``.
        local_rank: rank on this node (selects the GPU).
        world_size: number of processes in the run (1: a plain single-process run).
        device: where this process computes (``cuda:<local_rank>`` on a GPU node).
        backend: ``"nccl"`` or ``"gloo"``; ``None`` for a single process (no process group).
        init_method: where the processes meet (``"env://"`` under torchrun, else ``--dist-url``); ``None`` alone.
        launcher: ``"torchrun"``, ``"flags"`` (the seed's ``--distributed``) or ``"single"``.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    init_method: str | None = None
    launcher: str = "single"

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs, merged metrics and prints summaries."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """Whether there is a process group (more than one process)."""
        return self.world_size > 1


def _flag(args: argparse.Namespace, dest: str, default: object) -> object:
    return getattr(args, dest, default)


def _base_device(args: argparse.Namespace, distributed: bool) -> torch.device:
    """``--device`` as a device type; a GPU index is refused in a distributed run (each rank takes its own)."""
    device = resolve_device(_flag(args, "device", "auto"))
    if distributed and device.type == "cuda" and device.index is not None:
        raise ValueError(f"--device must be 'auto', 'cuda' or 'cpu' in a distributed run (rank r uses GPU "
                         f"LOCAL_RANK), got {_flag(args, 'device', 'auto')!r}.")  # fmt: skip
    return device


def processes_per_node(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Processes that ``--distributed`` starts on this node: the CUDA GPUs on a GPU run, else 1.

    Always 1 under torchrun (it started the processes) and without ``--distributed``.
    """
    env = os.environ if env is None else env
    if all(key in env for key in _TORCHRUN_KEYS) or not _flag(args, "distributed", False):
        return 1
    return max(1, torch.cuda.device_count()) if _base_device(args, True).type == "cuda" else 1


def _backend(args: argparse.Namespace, device: torch.device, rank: int) -> str:
    """``--dist-backend``, with gloo instead of nccl off CUDA (rank 0 says so once)."""
    backend = check_choice("--dist-backend", _flag(args, "dist_backend", "nccl"), BACKENDS)
    if backend == "nccl" and device.type != "cuda":
        if rank == 0:
            warnings.warn("--dist-backend nccl needs CUDA; this run is on the CPU, so it uses gloo.", UserWarning,
                          stacklevel=3)
        return "gloo"
    return backend


def _warn_flags_ignored(args: argparse.Namespace) -> None:
    given = [option for dest, (option, default) in _SEED_FLAGS.items() if _flag(args, dest, default) != default]
    if given:
        warnings.warn(f"{', '.join(given)} {'have' if len(given) > 1 else 'has'} no effect under torchrun (its "
                      f"RANK/WORLD_SIZE environment decides).", UserWarning, stacklevel=3)  # fmt: skip


def _env_int(env: Mapping[str, str], key: str) -> int:
    value = env[key]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key} must be an integer (set by torchrun), got {value!r}.") from None


def resolve_context(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    *,
    local_rank: int = 0,
    per_node: int | None = None,
) -> DistContext:
    """Work out rank, world size, device and backend without starting anything (see the module docstring).

    Args:
        args: parsed flags; reads ``distributed``, ``world_size``, ``rank``, ``dist_url``, ``dist_backend`` and
            ``device`` where present (seed defaults otherwise).
        env: the environment (default ``os.environ``); torchrun's ``RANK``/``WORLD_SIZE`` take precedence.
        local_rank: this process's index on the node when ``--distributed`` started it.
        per_node: processes per node under ``--distributed`` (default :func:`processes_per_node`).

    Raises:
        ValueError: bad ``--world_size``/``--rank``/``--dist-url``/``--dist-backend``/``--device``, or a torchrun
            environment without ``MASTER_ADDR``/``MASTER_PORT``.
    """
    env = os.environ if env is None else env
    if all(key in env for key in _TORCHRUN_KEYS):
        _warn_flags_ignored(args)
        world = check_int("WORLD_SIZE", _env_int(env, "WORLD_SIZE"), 1)
        rank = check_int("RANK", _env_int(env, "RANK"), 0, world - 1)
        local = check_int("LOCAL_RANK", _env_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0, 0)
        missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if world > 1 and not env.get(key)]
        if missing:
            raise ValueError(f"{missing[0]} must be set when RANK and WORLD_SIZE are (start with torchrun), got none.")
        launcher, init_method = "torchrun", "env://"
    elif _flag(args, "distributed", False):
        nodes = check_int("--world_size", _flag(args, "world_size", 1), 1)
        node = check_int("--rank", _flag(args, "rank", 0), 0, nodes - 1)
        per_node = processes_per_node(args, env) if per_node is None else check_int("per_node", per_node, 1)
        local = check_int("local_rank", local_rank, 0, per_node - 1)
        world, rank = nodes * per_node, node * per_node + local
        init_method = str(_flag(args, "dist_url", _SEED_FLAGS["dist_url"][1]))
        if not init_method.startswith(_URL_SCHEMES):
            raise ValueError(f"--dist-url must start with one of {', '.join(_URL_SCHEMES)} (e.g. "
                             f"tcp://node0:23456), got {init_method!r}.")  # fmt: skip
        launcher = "flags"
    else:
        return DistContext(device=_base_device(args, False))
    device = _base_device(args, world > 1)
    if device.type == "cuda":
        device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
    if world == 1:
        return DistContext(device=device, launcher=launcher)
    return DistContext(rank=rank, local_rank=local, world_size=world, device=device,
                       backend=_backend(args, device, rank), init_method=init_method, launcher=launcher)


def init_distributed(args: argparse.Namespace, *, local_rank: int = 0, per_node: int | None = None) -> DistContext:
    """Resolve this process's :class:`DistContext` and join the process group (nothing to join when alone).

    On CUDA, ``torch.cuda.set_device`` selects the rank's GPU first (NCCL needs it). Pair with :func:`cleanup`.

    Raises:
        ValueError: bad flags (see :func:`resolve_context`).
        RuntimeError: a process group of another size or rank already exists in this process.
    """
    ctx = resolve_context(args, local_rank=local_rank, per_node=per_node)
    if not ctx.is_distributed:
        return ctx
    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
    if dist.is_initialized():
        if (dist.get_rank(), dist.get_world_size()) != (ctx.rank, ctx.world_size):
            raise RuntimeError(f"process group must be rank {ctx.rank} of {ctx.world_size}, got rank "
                               f"{dist.get_rank()} of {dist.get_world_size()} already initialised.")  # fmt: skip
        return ctx
    dist.init_process_group(ctx.backend, init_method=ctx.init_method, world_size=ctx.world_size, rank=ctx.rank,
                            timeout=TIMEOUT)  # fmt: skip
    logger.info("rank %d of %d (%s, %s, %s) joined at %s", ctx.rank, ctx.world_size, ctx.launcher, ctx.backend,
                ctx.device, ctx.init_method)  # fmt: skip
    return ctx


def cleanup() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
