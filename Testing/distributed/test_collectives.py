"""Collectives, error hand-over and DDP in two real gloo processes started by ``launch`` (the seed's spawn path).

On a GPU node ``--distributed`` spawns one process per GPU; here the per-node count is set to 2 so that the same
code path (``torch.multiprocessing.spawn`` → ``init_distributed`` → worker → ``cleanup``) runs on the CPU.
"""

from __future__ import annotations

import argparse
import json

import pytest
from dist_helpers import collective_worker, free_port

from SpectrumAttackLib.distributed import launcher


@pytest.mark.slow
def test_two_spawned_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "processes_per_node", lambda args: 2)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    args = argparse.Namespace(distributed=True, world_size=1, rank=0, dist_url=f"tcp://127.0.0.1:{free_port()}",
                              dist_backend="gloo", device="cpu", out_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match=r"process 1 of this node failed: ValueError: --json_list"):
        launcher.launch(collective_worker, args)
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, view in enumerate(seen):
        assert (view["rank"], view["local_rank"], view["world_size"]) == (rank, rank, 2)
        assert (view["backend"], view["launcher"], view["device"]) == ("gloo", "flags", "cpu")
        assert view["sum"] == 3.0
        assert view["gathered"] == [{"from": 0}, {"from": 1}]
        assert view["broadcast"] == "sent by 0"
        assert view["on_main"] == "made by 0"
        assert view["results"] == [0, 10]
        # rank 0's error reaches rank 1 with its type and message
        assert view["main_error"] == ["ValueError", "--data_dir must be a folder, got 'on purpose'."]
        assert view["wrapped"] == "DistributedDataParallel"
        assert view["grad"] == pytest.approx([3.0] * 3)  # (2·1 + 2·2) / 2: gradients averaged over the ranks
    assert seen[1]["share_error"] == ["ValueError", "--data_dir must be a folder, got 'on purpose'."]
    assert seen[0]["share_error"] == ["RuntimeError",
                                      "rank 1 failed: ValueError: --data_dir must be a folder, got 'on purpose'."]
    assert seen[0]["initial_weight"] == seen[1]["initial_weight"]  # DDP copied rank 0's weights
