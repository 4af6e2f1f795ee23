"""Run a subcommand in every process of a distributed run, or once in a plain run.

``spectrum-attack train`` and ``attack`` hand their work to :func:`launch` as ``worker(args, ctx) -> int``. Under
torchrun, or alone, this process is the only one to start: it joins the process group (if any), runs the worker
and leaves the group. With the seed's ``--distributed`` on a node with several GPUs, it starts one process per GPU
(``torch.multiprocessing.spawn``), as the reference scripts did, and waits for them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch.multiprocessing as mp

from SpectrumAttackLib.distributed.collectives import barrier
from SpectrumAttackLib.distributed.context import DistContext, cleanup, init_distributed, processes_per_node

__all__ = ["Worker", "launch"]

#: a subcommand's body: runs in every process with that process's context; returns the exit code.
Worker = Callable[[argparse.Namespace, DistContext], int]


def launch(worker: Worker, args: argparse.Namespace) -> int:
    """Run ``worker`` in this process, or in one spawned process per GPU of this node (see the module docstring).

    Returns:
        the worker's exit code (0 after spawned processes all succeeded).

    Raises:
        ValueError: bad distributed flags (see :func:`~SpectrumAttackLib.distributed.context.resolve_context`).
        RuntimeError: a spawned process failed (the message is its error's last line).
    """
    per_node = processes_per_node(args)
    if per_node > 1:
        try:
            mp.spawn(_spawned, args=(worker, args, per_node), nprocs=per_node, join=True)
        except mp.ProcessRaisedException as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise RuntimeError(f"process {exc.error_index} of this node failed: {lines[-1]}") from None
        except mp.ProcessExitedException as exc:
            raise RuntimeError(f"process {exc.error_index} of this node exited with code {exc.exit_code}.") \
                from None
        return 0
    return _run_in_group(worker, args, init_distributed(args))


def _run_in_group(worker: Worker, args: argparse.Namespace, ctx: DistContext) -> int:
    """Run ``worker`` and leave the process group. A worker that returns waits for the other ranks first, so no
    rank tears its connections down while another still talks to it (gloo aborts the peer process then)."""
    try:
        code = int(worker(args, ctx) or 0)
        barrier(ctx)
        return code
    finally:
        cleanup()


def _spawned(local_rank: int, worker: Worker, args: argparse.Namespace, per_node: int) -> None:
    """Entry point of a process started by :func:`launch` (``local_rank`` comes first from ``mp.spawn``)."""
    code = _run_in_group(worker, args, init_distributed(args, local_rank=local_rank, per_node=per_node))
    if code:
        raise SystemExit(code)
