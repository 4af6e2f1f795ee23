"""Who is who in a distributed run: torchrun's environment, the seed's flags, backends, devices, shards.

These tests resolve contexts without starting process groups; the process groups themselves are exercised in
``test_collectives.py`` and the command-line tests.
"""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch

from SpectrumAttackLib.cli.main import build_parser
from SpectrumAttackLib.distributed import (
    DistContext,
    distributed_sampler,
    processes_per_node,
    resolve_context,
    shard,
    shard_indices,
)

TORCHRUN_ENV = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def flags(line: str = "") -> argparse.Namespace:
    """``spectrum-attack train <line>`` parsed by the program's parser (every seed flag with its default)."""
    return build_parser().parse_args(["train", "--device", "cpu", *line.split()])


def test_plain_run_is_one_process_without_a_group():
    ctx = resolve_context(flags(), env={})
    assert ctx == DistContext(device=torch.device("cpu"))
    assert ctx.is_main and not ctx.is_distributed and ctx.backend is None


def test_torchrun_environment_gives_rank_and_world():
    ctx = resolve_context(flags("--dist-backend gloo"), env=TORCHRUN_ENV)
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (1, 1, 2)
    assert (ctx.backend, ctx.init_method, ctx.launcher) == ("gloo", "env://", "torchrun")
    assert not ctx.is_main and ctx.is_distributed


def test_torchrun_environment_wins_over_the_seed_flags():
    env = {**TORCHRUN_ENV, "RANK": "0"}
    with pytest.warns(UserWarning, match="--world_size, --rank, --dist-url have no effect under torchrun"):
        ctx = resolve_context(flags("--distributed --world_size 4 --rank 3 --dist-url tcp://10.0.0.1:1 "
                                    "--dist-backend gloo"), env=env)
    assert (ctx.rank, ctx.world_size, ctx.init_method) == (0, 2, "env://")


def test_torchrun_with_one_process_builds_no_group():
    ctx = resolve_context(flags(), env={"RANK": "0", "WORLD_SIZE": "1"})
    assert not ctx.is_distributed and ctx.backend is None and ctx.launcher == "torchrun"


def test_seed_flags_count_nodes_times_processes_per_node():
    # Node 1 of 3 with 4 processes per node: process 2 there is global rank 1·4 + 2 of 12 (the reference's rule).
    ctx = resolve_context(flags("--distributed --world_size 3 --rank 1 --dist-url tcp://10.0.0.1:23456 "
                                "--dist-backend gloo"), env={}, local_rank=2, per_node=4)
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (6, 2, 12)
    assert (ctx.init_method, ctx.launcher) == ("tcp://10.0.0.1:23456", "flags")


def test_seed_flags_on_the_cpu_run_one_process_per_node():
    args = flags("--distributed --world_size 2 --rank 1")
    assert processes_per_node(args, env={}) == 1
    assert processes_per_node(args, env=TORCHRUN_ENV) == 1  # torchrun started the processes itself
    assert processes_per_node(flags(), env={}) == 1
    with pytest.warns(UserWarning, match="gloo"):
        ctx = resolve_context(flags("--distributed --world_size 2 --rank 0"), env={})
    assert (ctx.rank, ctx.world_size, ctx.backend) == (0, 2, "gloo")


def test_nccl_off_cuda_falls_back_to_gloo_and_rank_0_says_so():
    with pytest.warns(UserWarning, match="--dist-backend nccl needs CUDA"):
        assert resolve_context(flags(), env={**TORCHRUN_ENV, "RANK": "0"}).backend == "gloo"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the other ranks stay quiet
        assert resolve_context(flags(), env=TORCHRUN_ENV).backend == "gloo"


@pytest.mark.parametrize(("line", "env", "name"), [
    ("--distributed --world_size 2 --rank 2", {}, "--rank"),
    ("--distributed --world_size 0", {}, "--world_size"),
    ("--distributed --world_size 2 --dist-url http://node0:80", {}, "--dist-url"),
    ("--distributed --world_size 2 --dist-backend mpi", {}, "--dist-backend"),
    ("", {**TORCHRUN_ENV, "RANK": "2"}, "RANK"),
    ("", {**TORCHRUN_ENV, "WORLD_SIZE": "two"}, "WORLD_SIZE"),
    ("", {k: v for k, v in TORCHRUN_ENV.items() if k != "MASTER_PORT"}, "MASTER_PORT"),
])
def test_bad_settings_name_the_flag(line, env, name):
    with pytest.raises(ValueError, match=name):
        resolve_context(flags(line), env=env)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_ranks_take_their_local_gpu():
    ctx = resolve_context(flags("--device cuda"), env={**TORCHRUN_ENV, "LOCAL_RANK": "0"})
    assert ctx.device == torch.device("cuda", 0) and ctx.backend == "nccl"
    with pytest.raises(ValueError, match="--device"):
        resolve_context(flags("--device cuda:0"), env=TORCHRUN_ENV)


@pytest.mark.parametrize("mode", ["strided", "contiguous"])
@pytest.mark.parametrize(("count", "world"), [(0, 2), (1, 2), (3, 2), (7, 3), (12, 8), (5, 1)])
def test_shards_cover_every_index_once_and_balance(mode, count, world):
    shards = [shard_indices(count, rank, world, mode) for rank in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(count))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert all(s == sorted(s) for s in shards)


def test_shard_layouts():
    assert shard_indices(5, 1, 2) == [1, 3]
    assert shard_indices(5, 0, 2, "contiguous") == [0, 1, 2]
    assert shard_indices(5, 1, 2, "contiguous") == [3, 4]
    assert shard(["a", "b", "c", "d"], 1, 3) == ["b"]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"count": 3, "rank": 2, "world_size": 2}, "rank"),
    ({"count": 3, "rank": 0, "world_size": 0}, "world_size"),
    ({"count": -1, "rank": 0, "world_size": 1}, "count"),
    ({"count": 3, "rank": 0, "world_size": 1, "mode": "random"}, "mode"),
])
def test_bad_shards_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        shard_indices(**kwargs)


def test_training_sampler_only_with_several_ranks():
    cases = [{"image": f"img{i}"} for i in range(3)]
    assert distributed_sampler(cases, DistContext(), seed=0) is None
    ranks = [DistContext(rank=r, world_size=2, backend="gloo") for r in range(2)]
    samplers = [distributed_sampler(cases, ctx, seed=5) for ctx in ranks]
    for sampler in samplers:
        sampler.set_epoch(1)
    drawn = [list(s) for s in samplers]
    assert len(drawn[0]) == len(drawn[1]) == 2  # padded to the same number of batches
    assert set(drawn[0]) | set(drawn[1]) == {0, 1, 2}
