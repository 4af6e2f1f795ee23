"""MetricsTable: nan-aware means, merge, reset, CSV and strict JSON round trips."""

from __future__ import annotations

import csv
import json
import math

import pytest
from metrics_volumes import cube

from SpectrumAttackLib.metrics import MetricsTable, compute_case_metrics


def case(dice: float | None, liver: float | None, spleen: float | None, status: str = "ok") -> dict:
    return {
        "preset": "clinical",
        "adversarial": {
            "dice": dice,
            "dice_per_class": {"liver": liver, "spleen": spleen},
            "lpips_status": status,
        },
        "units": {"hd95": "mm"},
    }


def strict_loads(text: str):
    def reject(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def table() -> MetricsTable:
    t = MetricsTable()
    t.add("case_a", case(0.5, 0.4, None))
    t.add("case_b", case(float("nan"), 0.8, 0.6, status="unavailable: no lpips"))
    t.add("case_c", case(0.9, None, 0.2))
    return t


def test_aggregate_is_nan_aware_per_field_and_class(table):
    mean = table.aggregate()
    assert mean["adversarial"]["dice"] == pytest.approx(0.7)  # NaN of case_b skipped
    assert mean["adversarial"]["dice_per_class"]["liver"] == pytest.approx(0.6)
    assert mean["adversarial"]["dice_per_class"]["spleen"] == pytest.approx(0.4)
    assert mean["preset"] == "clinical" and mean["units"] == {"hd95": "mm"}  # agreed strings kept
    assert "lpips_status" not in mean["adversarial"]  # disagreeing strings dropped
    counts = table.counts()
    assert counts["adversarial"]["dice"] == 2
    assert counts["adversarial"]["dice_per_class"] == {"liver": 2, "spleen": 2}


def test_field_undefined_everywhere_aggregates_to_none():
    t = MetricsTable()
    t.add("a", {"hd95": None, "ssim": 0.5})
    t.add("b", {"hd95": float("inf"), "ssim": 1.0})
    assert t.aggregate() == {"hd95": None, "ssim": 0.75}
    assert t.case("b")["hd95"] is None  # non-finite values are stored as None


def test_add_rejects_duplicates_and_bad_input(table):
    with pytest.raises(ValueError, match="case_id"):
        table.add("case_a", case(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="case_id"):
        table.add("", case(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="metrics"):
        table.add("case_d", [0.1])


def test_merge_and_reset(table):
    other = MetricsTable()
    other.add("case_d", case(0.1, 0.2, 0.3))
    assert table.merge(other) is table
    assert table.case_ids == ["case_a", "case_b", "case_c", "case_d"]
    assert table.aggregate()["adversarial"]["dice"] == pytest.approx(1.5 / 3)
    clash = MetricsTable()
    clash.add("case_a", case(0.0, 0.0, 0.0))
    clash.add("case_e", case(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="case_id"):
        table.merge(clash)
    assert len(table) == 4  # nothing added on a clash
    table.reset()
    assert len(table) == 0 and table.aggregate() == {}


def test_json_is_strict_and_round_trips(table, tmp_path):
    path = table.to_json(tmp_path / "out" / "metrics.json")
    data = strict_loads(path.read_text())
    assert data["num_cases"] == 3
    assert [row["case_id"] for row in data["cases"]] == ["case_a", "case_b", "case_c"]
    assert data["cases"][1]["metrics"]["adversarial"]["dice"] is None
    assert data["mean"] == table.aggregate()
    assert data["count"]["adversarial"]["dice"] == 2
    again = MetricsTable.from_json(path)
    assert again.rows() == table.rows()
    assert again.aggregate() == table.aggregate()


def test_merging_json_files_of_two_ranks(tmp_path):
    ranks = []
    for rank, ids in enumerate((["a", "b"], ["c"])):
        t = MetricsTable()
        for i, case_id in enumerate(ids):
            t.add(case_id, {"dice": 0.1 * (rank + i + 1)})
        ranks.append(t.to_json(tmp_path / f"rank{rank}.json"))
    merged = MetricsTable.from_json(ranks[0]).merge(MetricsTable.from_json(ranks[1]))
    assert merged.case_ids == ["a", "b", "c"]
    assert merged.aggregate()["dice"] == pytest.approx((0.1 + 0.2 + 0.2) / 3)


def test_from_json_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="path"):
        MetricsTable.from_json(path)
    with pytest.raises(ValueError, match="rows"):
        MetricsTable.from_rows([{"case": "a"}])


def test_csv_has_case_rows_and_mean_row(table, tmp_path):
    path = table.to_csv(tmp_path / "metrics.csv")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header == [
        "case_id",
        "adversarial.dice",
        "adversarial.dice_per_class.liver",
        "adversarial.dice_per_class.spleen",
    ]
    assert [r[0] for r in rows[1:]] == ["case_a", "case_b", "case_c", "mean"]
    assert rows[2][1] == ""  # NaN → empty cell
    assert rows[1][3] == ""  # None → empty cell
    assert float(rows[4][1]) == pytest.approx(0.7)
    assert float(rows[4][3]) == pytest.approx(0.4)


def test_table_of_real_case_metrics(tmp_path):
    images = [cube((4, 4, 4)).astype("float32") * 0.5, None]
    labels = cube((4, 4, 4)) + cube((10, 10, 10), label=2)
    table = MetricsTable()
    for case_id, adv_seg in (("one", cube((5, 4, 4))), ("two", labels)):
        images[1] = images[0] + (0.1 if case_id == "one" else 0.0)
        m = compute_case_metrics(
            images[0], images[1], labels, adv_seg, labels=labels, num_classes=3, class_names=["bg", "liver", "spleen"]
        )
        table.add(case_id, m)
    mean = table.aggregate()
    # case one: spleen missed (HD95 undefined), case two: perfect → spleen HD95 mean is 0 from one case only
    assert mean["adversarial"]["hd95_per_class"]["spleen"] == 0.0
    assert table.counts()["adversarial"]["hd95_per_class"]["spleen"] == 1
    assert mean["adversarial"]["psnr"] == pytest.approx(table.case("one")["adversarial"]["psnr"])
    assert mean["units"]["hd95"] == "mm"
    assert not math.isnan(mean["adversarial"]["fooling_rate"])
    strict_loads(table.to_json(tmp_path / "m.json").read_text())
