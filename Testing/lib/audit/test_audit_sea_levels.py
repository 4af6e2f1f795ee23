"""The audit's SEA ensemble and exact SSIM levels on the tiny phantom CT: records, summary, report, resume, logs."""

from __future__ import annotations

import json

import pytest

from SpectrumAttackLib.audit.summary import dice_at_levels, ensemble_worst_case, voxel_dice
from SpectrumAttackLib.workflows import audit

GRID = {"attacks": {
    f"apgd-{loss}": {"attack": "apgd", "eps": [8], "ensemble": "sea",
                     "params": {"loss": loss, "steps": 2, "progressive_radius": True}}
    for loss in ("balanced-masked-ce", "js")
} | {"gn": {"std": [8]}}, "ssim_levels": [0.99, 0.97]}
LEVEL_UNITS = 3  # every entry has a knob: two of SEA's APGD losses (the greedy start and JS) and GN


def run_audit(loaded, phantom, output=None, **kwargs):
    hu, labels, affine = phantom
    return audit((hu, affine), labels=labels, models={"tiny": loaded}, grid=GRID, output=output, name="phantom",
                 precision="fp32", **kwargs)


@pytest.fixture(scope="module")
def finished(loaded, phantom, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sea") / "out"
    return run_audit(loaded, phantom, folder), folder


def test_ensemble_and_level_records_and_summary(finished):
    result, folder = finished
    grid_cells = [c for c in result.cells if "ssim_level" not in c]
    level_cells = [c for c in result.cells if "ssim_level" in c]
    assert len(grid_cells) == 3 and len(level_cells) == 2 * LEVEL_UNITS
    own = result.summary["per_model"]["tiny"]
    sea = own["ensembles"]["sea"]["8"]
    apgd = [c for c in grid_cells if c["ensemble"] == "sea"]
    assert {c["attack"] for c in apgd} == {"apgd-balanced-masked-ce", "apgd-js"}
    worst = min(apgd, key=lambda c: c["dice"])
    assert sea["mean_dice"] == pytest.approx(worst["dice"])
    assert sea["cases"]["phantom"]["attack"] == worst["attack"] and sum(sea["wins"].values()) == 1
    chosen = sea["cases"]["phantom"]["voxel_attack"]
    assert sea["voxel_dice"] == pytest.approx(min(voxel_dice([c["voxel_counts"]]) for c in apgd))
    assert voxel_dice([next(c for c in apgd if c["attack"] == chosen)["voxel_counts"]]) == sea["voxel_dice"]
    for cell in level_cells:
        search = cell["ssim_search"]
        assert search["status"] in ("reached", "projected", "unreachable", "max-runs") and search["runs"] <= 8
        assert search["reused"] == 1  # its first run is the grid's cell at that budget, not run again
        assert cell["ssim_3d"] == pytest.approx(search["ssim"], abs=1e-9)  # the audit's SSIM is the search's
        assert cell["ssim_3d"] >= cell["ssim_level"]
        if search["status"] in ("reached", "projected"):
            assert cell["ssim_3d"] <= cell["ssim_level"] + 0.002
        assert (0.9 <= search["weight"] < 1) if search["status"] == "projected" else search["weight"] == 1
        assert cell["budget"] == search["budget"] == cell["params"][cell["budget_name"]]
    for level in ("0.99", "0.97"):
        at = own["at_levels"][level]
        mine = [c for c in level_cells if f"{c['ssim_level']:.2f}" == level]
        assert at["dice"] == pytest.approx(min(c["dice"] for c in mine))
        assert set(at["families"]) == {c["attack"] for c in mine}
        for attack, family in at["families"].items():
            weights = [c["ssim_search"]["weight"] for c in mine if c["attack"] == attack]
            assert family["weight"] == pytest.approx(sum(weights) / len(weights))
    assert own["at_levels"]["0.99"]["dice"] >= own["at_levels"]["0.97"]["dice"] - 0.05
    document = json.loads((folder / "audit.json").read_text())
    assert document["manifest"]["grid"]["ssim_levels"] == [0.99, 0.97]
    page = (folder / "report.html").read_text()
    assert "Robust Dice at exact SSIM levels" in page and "Ensemble worst case (SEA)" in page
    assert page.count("data:image/png;base64,") == 1 + 2  # the curves and one worst case per level
    assert not list(folder.glob("cellfig-*"))


def test_resume_redoes_only_unfinished_level_units_and_logs_one_line_per_unit(finished, loaded, phantom, tmp_path,
                                                                             capsys):
    class StopError(Exception):
        pass

    def stop_at_the_first_level_unit(progress):
        if "SSIM level" in progress.message:
            raise StopError

    folder = tmp_path / "out"
    with pytest.raises(StopError):
        run_audit(loaded, phantom, folder, progress=stop_at_the_first_level_unit)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("audit ")]
    assert len(lines) == 4 and "ETA" in lines[0] and "Dice" in lines[0]  # a log line per cell, not a bar
    ran = []
    result = run_audit(loaded, phantom, folder, resume=True, progress=lambda p: ran.append(p.message))
    assert len(ran) == LEVEL_UNITS - 1 and result.reused == 3 + 2
    reference = finished[0]
    for got, want in zip(result.cells, reference.cells, strict=True):
        assert got["fingerprint"] == want["fingerprint"]
        assert got["budget"] == pytest.approx(want["budget"]) and got["dice"] == pytest.approx(want["dice"])
    # the resumed units ran their first budget again (its grid cell was finished before): the same levels
    resumed = [c for c in result.cells if "ssim_search" in c and c["ssim_search"]["reused"] == 0]
    assert len(resumed) == 2 * (LEVEL_UNITS - 1)
    for cell in resumed:
        want = next(c for c in reference.cells if c["fingerprint"] == cell["fingerprint"])
        assert cell["ssim_search"] == {**want["ssim_search"], "reused": 0} and cell["ssim_3d"] == want["ssim_3d"]


def _cell(case, attack, dice, counts, loss=None, **extra):
    return {"case": case, "model": "m", "attack": attack, "ensemble": "sea", "budget": 8, "dice": dice,
            "voxel_counts": counts, "params": {"loss": loss}, **extra}


def test_voxel_aggregated_worst_case_is_seas_greedy_choice_not_the_per_volume_minimum():
    # Volume a: attack x lowers a's own Dice most, but y removes more foreground voxels, which lowers the
    # dataset's voxel Dice more; volume b is small, so its choice barely matters.
    big = {"intersection": [0, 50], "prediction": [0, 100], "reference": [0, 100]}
    worse_voxels = {"intersection": [0, 10], "prediction": [0, 400], "reference": [0, 100]}
    cells = [_cell("a", "x", 0.40, big, "balanced-masked-ce"), _cell("a", "y", 0.45, worse_voxels, "js"),
             _cell("b", "x", 0.9, {"intersection": [0, 9], "prediction": [0, 10], "reference": [0, 10]},
                   "balanced-masked-ce"),
             _cell("b", "y", 0.8, {"intersection": [0, 8], "prediction": [0, 10], "reference": [0, 10]}, "js")]
    sea = ensemble_worst_case(cells, "m")["sea"]["8"]
    assert sea["mean_dice"] == pytest.approx((0.40 + 0.8) / 2)
    assert sea["cases"]["a"]["attack"] == "x" and sea["cases"]["b"]["attack"] == "y"
    assert sea["cases"]["a"]["voxel_attack"] == "y" and sea["cases"]["b"]["voxel_attack"] == "y"
    assert sea["voxel_dice"] == pytest.approx(2 * (10 + 8) / (410 + 110))
    assert sea["wins"] == {"x": 1, "y": 1} and sea["voxel_wins"] == {"y": 2}


def test_levels_keep_only_admissible_cells():
    search = {"status": "reached", "runs": 3}
    cells = [{"case": "a", "model": "m", "attack": "pgd", "budget_name": "eps", "budget": 3.0, "dice": 0.7,
              "ssim_3d": 0.9705, "ssim_level": 0.97, "ssim_search": search},
             {"case": "a", "model": "m", "attack": "vafa-3d", "budget_name": "q_max", "budget": 5.0, "dice": 0.2,
              "ssim_3d": 0.95, "ssim_level": 0.97, "ssim_search": {"status": "below-at-weakest", "runs": 2}}]
    at = dice_at_levels(cells, "m")["0.97"]
    assert at["dice"] == 0.7 and at["cases"]["a"]["attack"] == "pgd"
    assert at["families"]["vafa-3d"]["status"] == {"below-at-weakest": 1}
