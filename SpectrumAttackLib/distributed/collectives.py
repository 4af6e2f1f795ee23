"""Collectives over the ranks of a :class:`DistContext`; each one is a plain local operation in a single process.

Besides thin wrappers (:func:`barrier`, :func:`all_reduce_sum`, :func:`gather_objects`, :func:`broadcast_object`),
two helpers keep every rank in step when something fails, so that an error on one rank ends the run on all ranks
with a message instead of leaving the others waiting in a collective until the timeout:

- :func:`on_main` runs a job on rank 0 only (check and prepare an output folder) and hands its result, or its
  error, to every rank;
- :func:`gather_results` runs each rank's share of the work and gives everyone the list of all shares, or raises
  on every rank when any rank failed.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from SpectrumAttackLib.distributed.context import DistContext

__all__ = ["all_reduce_sum", "barrier", "broadcast_object", "gather_objects", "gather_results", "on_main"]

T = TypeVar("T")


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here."""
    if ctx.is_distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over the ranks, in place, and return it (on ``ctx.device`` for NCCL)."""
    if ctx.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank (``[obj]`` in a single process)."""
    if not ctx.is_distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` (picklable) on every rank; other ranks' ``obj`` is ignored."""
    if not ctx.is_distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _portable(exc: BaseException) -> tuple[str, str]:
    """An exception as (builtin type name, first line of its message): always picklable."""
    text = str(exc).strip()
    return type(exc).__name__, text.splitlines()[0] if text else type(exc).__name__


def _rebuild(kind: str, message: str) -> Exception:
    """The exception to raise on a rank that did not fail: same builtin type where there is one."""
    cls = getattr(builtins, kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except TypeError:  # builtin with a different constructor (UnicodeDecodeError ...)
            pass
    return RuntimeError(message)


def on_main(job: Callable[[], T], ctx: DistContext) -> T:
    """Run ``job`` on rank 0 only and return its (picklable) result on every rank.

    If ``job`` raises on rank 0, it raises there and every other rank raises an exception of the same builtin
    type (``RuntimeError`` for others) with the same message. All ranks must call this together.
    """
    if not ctx.is_distributed:
        return job()
    outcome: tuple[bool, Any] = (True, None)
    error: BaseException | None = None
    if ctx.is_main:
        try:
            outcome = (True, job())
        except Exception as exc:
            error = exc
            outcome = (False, _portable(exc))
    ok, value = broadcast_object(outcome, ctx)
    if error is not None:
        raise error
    if not ok:
        raise _rebuild(*value)
    return value


def gather_results(job: Callable[[], T], ctx: DistContext) -> list[T]:
    """Run ``job`` on every rank and return all ranks' results, in rank order, on every rank.

    If ``job`` raises on any rank, that rank re-raises its own error and every other rank raises
    ``RuntimeError("rank <r> failed: <message>")`` naming the lowest failing rank. All ranks must call this
    together; in a single process it is ``[job()]``.
    """
    if not ctx.is_distributed:
        return [job()]
    error: BaseException | None = None
    try:
        outcome: tuple[bool, Any] = (True, job())
    except Exception as exc:
        error = exc
        outcome = (False, _portable(exc))
    shares = gather_objects(outcome, ctx)
    if error is not None:
        raise error
    for rank, (ok, value) in enumerate(shares):
        if not ok:
            raise RuntimeError(f"rank {rank} failed: {value[0]}: {value[1]}")
    return [value for _, value in shares]
