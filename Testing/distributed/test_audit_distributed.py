"""``spectrum-attack audit`` over two gloo processes equals one process: the cells are shared out, rank 0 writes."""

from __future__ import annotations

import csv
import json

import pytest
from dist_helpers import check_ok, run_together, seed_flag_ranks, single

pytestmark = pytest.mark.slow

GRID = {"attacks": {"pgd": {"eps": [4, 16], "params": {"steps": 1}}, "gn": {"std": [8]}}}
#: fields that depend on the machine's speed, not on the results.
TIMES = ("seconds", "cell_seconds")


def _rows(path):
    with path.open() as handle:
        return [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(handle)]


def test_audit_on_two_ranks_equals_one_process(dataset, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID))
    words = ["audit", *dataset.data_flags(loader=False), "--use_pretrained", "--pretrained_path",
             str(dataset.checkpoint), "--grid", str(grid)]
    ranks = run_together(seed_flag_ranks([*words, "--output", str(tmp_path / "two")]), tmp_path)
    check_ok(ranks)
    check_ok(run_together([single([*words, "--output", str(tmp_path / "one")])], tmp_path))
    two, one = tmp_path / "two", tmp_path / "one"
    assert "results written to" in ranks[0].stdout and "results written to" not in ranks[1].stdout
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} == {
        "audit.csv", "audit.json", "curves.png", "report.html", "manifest.json"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging folders moved away

    merged, alone = (json.loads((folder / "audit.json").read_text()) for folder in (two, one))
    assert len(merged["cells"]) == 3 * 3  # 3 cases x 3 cells
    for a, b in zip(merged["cells"], alone["cells"], strict=True):
        assert {k: v for k, v in a.items() if k not in TIMES} == {k: v for k, v in b.items() if k not in TIMES}
    assert merged["clean"] == alone["clean"]
    assert merged["summary"] == alone["summary"]
    assert _rows(two / "audit.csv") == _rows(one / "audit.csv")
    assert [d["manifest"]["processes"] for d in (merged, alone)] == [2, 1]
