"""Helpers of the distributed tests: the test dataset's flags, process launching with time limits, a spawned worker.

Every run is a real multi-process run on gloo over the loopback interface; a run that hangs is killed (with its
whole process group) after ``TIMEOUT_S`` and fails the test with the output it produced.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from SpectrumAttackLib.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_object,
    gather_objects,
    gather_results,
    on_main,
    wrap_model,
)
from SpectrumAttackLib.models import build_model

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180
#: torchrun's variables: removed from the children's environment unless a test sets them.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")
CLI = ("-m", "SpectrumAttackLib.cli.main")
#: validation cases of the test split, in split order (uneven over two ranks, not sorted).
VALIDATION = (3, 1, 2)
#: model flags of the tiny UNet and the tiny data settings (8 mm voxels, 32³ windows).
UNET_FLAGS = ("--model_name", "unet", "--unet_channels", "4", "8", "16", "--unet_strides", "2", "2",
              "--num_res_units", "1")
TINY_DATA = ("--roi_x", "32", "--roi_y", "32", "--roi_z", "32", "--space_x", "8", "--space_y", "8", "--space_z", "8",
             "--sw_batch_size", "4")
#: the data loaders' flag of the seed's commands (``audit`` has no data loader and refuses it).
LOADER_FLAGS = ("--workers", "0")


@dataclass(frozen=True)
class Dataset:
    """``data_dir`` holding ``split.json`` and the tiny UNet checkpoint."""

    data_dir: Path
    checkpoint: Path

    def data_flags(self, loader: bool = True) -> list[str]:
        """The split, the tiny UNet and the tiny data settings; ``loader``: with the seed commands' ``--workers 0``."""
        return ["--data_dir", str(self.data_dir), "--json_list", "split.json", *UNET_FLAGS, *TINY_DATA,
                *(LOADER_FLAGS if loader else ())]


def build_tiny_unet() -> torch.nn.Module:
    """The network of :data:`UNET_FLAGS` (14 BTCV classes), weights drawn from seed 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model("unet", 14, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment of launched processes: one thread each, the repository importable, no torchrun state."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p))
    return env


def run_together(commands: Sequence[Sequence[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Start every command at once and wait for all; kill them all and fail if any runs past ``TIMEOUT_S``."""
    procs = [subprocess.Popen(list(c), cwd=cwd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) for c in commands]
    results = []
    try:
        for command, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=TIMEOUT_S)
            results.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        texts = []
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            texts.append(f"$ {' '.join(proc.args)}\n{out}\n{err}")
        pytest.fail(f"processes still running after {TIMEOUT_S} s:\n" + "\n".join(texts))
    return results


def check_ok(results: Sequence[subprocess.CompletedProcess]) -> None:
    """Fail with the outputs unless every process exited with 0."""
    failed = [r for r in results if r.returncode != 0]
    if failed:
        pytest.fail("\n".join(f"$ {' '.join(r.args)}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}" for r in failed))


def torchrun(words: Sequence[str], processes: int = 2) -> list[str]:
    """``torchrun --standalone --nproc_per_node N -m SpectrumAttackLib.cli.main WORDS``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            *CLI, *words]


def seed_flag_ranks(words: Sequence[str], nodes: int = 2, backend: str | None = None) -> list[list[str]]:
    """One command per node with the seed's flags (one process per node on the CPU), meeting on a free port."""
    url = f"tcp://127.0.0.1:{free_port()}"
    extra = [] if backend is None else ["--dist-backend", backend]
    return [[sys.executable, *CLI, *words, "--distributed", "--world_size", str(nodes), "--rank", str(rank),
             "--dist-url", url, *extra] for rank in range(nodes)]


def single(words: Sequence[str]) -> list[str]:
    """The same command in one plain process."""
    return [sys.executable, *CLI, *words]


def collective_worker(args, ctx: DistContext) -> int:
    """Exercise every collective on each rank, write what it saw to ``<out_dir>/rank<r>.json``; rank 1 then fails.

    Runs in processes started by :func:`SpectrumAttackLib.distributed.launch`.
    """
    seen: dict = {"rank": ctx.rank, "world_size": ctx.world_size, "local_rank": ctx.local_rank,
                  "backend": ctx.backend, "launcher": ctx.launcher, "device": str(ctx.device)}
    seen["sum"] = float(all_reduce_sum(torch.tensor([ctx.rank + 1.0]), ctx))
    seen["gathered"] = gather_objects({"from": ctx.rank}, ctx)
    seen["broadcast"] = broadcast_object(f"sent by {ctx.rank}", ctx)
    seen["on_main"] = on_main(lambda: f"made by {ctx.rank}", ctx)
    seen["results"] = gather_results(lambda: 10 * ctx.rank, ctx)
    for name, job in (("main_error", lambda: on_main(_fail, ctx)),
                      ("share_error", lambda: gather_results(lambda: _fail() if ctx.rank == 1 else 0, ctx))):
        try:
            job()
            seen[name] = None
        except Exception as exc:
            seen[name] = [type(exc).__name__, str(exc)]
    torch.manual_seed(ctx.rank)  # different initial weights on each rank: DDP must copy rank 0's
    model = wrap_model(nn.Linear(3, 1), ctx)
    seen["wrapped"] = type(model).__name__
    seen["initial_weight"] = model.module.weight.detach().flatten().tolist()
    model(torch.full((2, 3), float(ctx.rank + 1))).sum().backward()
    seen["grad"] = model.module.weight.grad.flatten().tolist()
    (Path(args.out_dir) / f"rank{ctx.rank}.json").write_text(json.dumps(seen))
    barrier(ctx)  # both files are written before rank 1 fails
    if ctx.rank == 1:
        raise ValueError("--json_list must name a split file, got 'rank one fails on purpose'.")
    return 0


def _fail() -> int:
    raise ValueError("--data_dir must be a folder, got 'on purpose'.")
