"""The audit's record store: durable lines per rank, cut-off lines skipped, the last record of a cell kept."""

from __future__ import annotations

from SpectrumAttackLib.audit.store import CellStore


def test_records_of_every_rank_are_read_back_and_a_cut_off_line_is_skipped(tmp_path):
    first, second = CellStore(tmp_path, rank=0), CellStore(tmp_path, rank=1)
    first.append("cells", {"fingerprint": "a", "dice": 0.5, "params": {"block_size": (8, 8, 8)}})
    second.append("cells", {"fingerprint": "b", "dice": float("nan")})
    with (tmp_path / "cells.rank1.jsonl").open("a") as handle:
        handle.write('{"fingerprint": "c", "dice": 0.')  # the process died while writing
    first.append("clean", {"fingerprint": "k", "dice": 0.9})
    records = first.read("cells")
    assert [r["fingerprint"] for r in records] == ["a", "b"]
    assert records[0]["params"]["block_size"] == [8, 8, 8] and records[1]["dice"] is None
    assert [r["fingerprint"] for r in second.read("clean")] == ["k"]
    first.append("cells", {"fingerprint": "a", "dice": 0.4})
    assert CellStore.latest(first.read("cells"))["a"]["dice"] == 0.4
    first.clear()
    assert first.read("cells") == [] and list(tmp_path.iterdir()) == []
