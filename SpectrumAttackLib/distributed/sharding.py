"""Sharing cases out over ranks: deterministic index shards and the training sampler.

A shard depends only on the number of items, the rank and the world size, never on timing, so every rank knows
which cases every other rank handles, and the union of the shards is every index exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from torch.utils.data import DistributedSampler

from SpectrumAttackLib.checks import check_choice, check_int
from SpectrumAttackLib.distributed.context import DistContext

__all__ = ["SHARD_MODES", "distributed_sampler", "shard", "shard_indices"]

T = TypeVar("T")

#: ``strided``: rank r takes r, r + n, r + 2n ... (balanced, the rule of training validation);
#: ``contiguous``: rank r takes one block, the first ``count % n`` ranks one item more.
SHARD_MODES = ("strided", "contiguous")


def shard_indices(count: int, rank: int, world_size: int, mode: str = "strided") -> list[int]:
    """Indices of ``range(count)`` handled by ``rank`` of ``world_size``, ascending.

    Raises:
        ValueError: ``count`` < 0, ``world_size`` < 1, ``rank`` outside ``[0, world_size)``, unknown ``mode``.

    Example:
        >>> shard_indices(5, 1, 2)
        [1, 3]
        >>> shard_indices(5, 1, 2, "contiguous")
        [3, 4]
    """
    count = check_int("count", count, 0)
    world_size = check_int("world_size", world_size, 1)
    rank = check_int("rank", rank, 0, world_size - 1)
    mode = check_choice("mode", mode, SHARD_MODES)
    if mode == "strided":
        return list(range(rank, count, world_size))
    base, extra = divmod(count, world_size)
    start = rank * base + min(rank, extra)
    return list(range(start, start + base + (rank < extra)))


def shard(items: Sequence[T], rank: int, world_size: int, mode: str = "strided") -> list[T]:
    """The items of ``rank``'s shard, in their original order (see :func:`shard_indices`)."""
    return [items[i] for i in shard_indices(len(items), rank, world_size, mode)]


def distributed_sampler(items: Sequence[Any], ctx: DistContext, *, seed: int, shuffle: bool = True
                        ) -> DistributedSampler | None:
    """A ``DistributedSampler`` over ``items`` (the training cases) for ``ctx``, or ``None`` in a single process.

    Every rank draws the same permutation (from ``seed`` and the epoch set by ``set_epoch``) and takes every
    ``world_size``-th entry; the list is padded by repeating cases so that all ranks run the same number of
    batches, which ``DistributedDataParallel`` needs.
    """
    if not ctx.is_distributed:
        return None
    return DistributedSampler(items, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=int(seed))
