"""The audit's summary maths on hand-made cells: robust Dice, half-clean-Dice budget, area under the curve."""

from __future__ import annotations

import pytest

from SpectrumAttackLib.audit.summary import area_under_curve, half_dice_budget, robust_dice, summarise


def cell(case: str, attack: str, budget: float | str, dice: float, ssim: float, model: str = "m",
         budget_name: str = "eps", per_class: dict | None = None) -> dict:
    return {"case": case, "model": model, "attack": attack, "budget_name": budget_name, "budget": budget,
            "dice": dice, "ssim_3d": ssim, "dice_per_class": per_class or {}}


CLEAN = [{"case": "a", "model": "m", "dice": 0.8, "dice_per_class": {"liver": 0.9, "kidney": 0.7}},
         {"case": "b", "model": "m", "dice": 0.6, "dice_per_class": {"liver": 0.5, "kidney": 0.7}}]
CELLS = [
    cell("a", "pgd", 4, 0.6, 0.97), cell("a", "pgd", 8, 0.2, 0.91),
    cell("b", "pgd", 4, 0.5, 0.96), cell("b", "pgd", 8, 0.2, 0.89),
    cell("a", "saa", 0.2, 0.4, 0.995, budget_name="rho"), cell("a", "saa", 0.4, 0.1, 0.93, budget_name="rho"),
    cell("b", "saa", 0.2, 0.55, 0.992, budget_name="rho"), cell("b", "saa", 0.4, 0.3, 0.94, budget_name="rho"),
]


def test_robust_dice_takes_the_worst_admissible_attack_per_case_then_the_mean():
    # SSIM >= 0.99: only SA² at 0.2 qualifies: a -> 0.4, b -> 0.55.
    assert robust_dice(CELLS, CLEAN, "m", 0.99)["dice"] == pytest.approx((0.4 + 0.55) / 2)
    # SSIM >= 0.95: a -> min(0.6, 0.4) = 0.4; b -> min(0.5, 0.55) = 0.5 (PGD 4 at SSIM 0.96).
    result = robust_dice(CELLS, CLEAN, "m", 0.95)
    assert result["dice"] == pytest.approx(0.45)
    assert result["cases"]["b"] == {"dice": 0.5, "attack": "pgd", "budget": 4}
    # SSIM >= 0.90: a -> 0.1 (SA² 0.4 at 0.93), b -> 0.3 (PGD 8 at 0.89 is excluded).
    assert robust_dice(CELLS, CLEAN, "m", 0.90)["dice"] == pytest.approx(0.2)
    # Above every attack's SSIM the clean Dice remains.
    strict = robust_dice(CELLS, CLEAN, "m", 0.999)
    assert strict["dice"] == pytest.approx(0.7)
    assert {v["attack"] for v in strict["cases"].values()} == {"clean"}


def test_half_dice_budget_interpolates_between_points_from_the_clean_anchor():
    clean = 0.8
    curve = [{"budget": 4, "dice": 0.6}, {"budget": 8, "dice": 0.2}]
    # 0.4 is crossed between (4, 0.6) and (8, 0.2): 4 + (0.6 - 0.4) / 0.4 * 4 = 6.
    assert half_dice_budget(curve, clean, "eps") == pytest.approx(6.0)
    # Crossed before the first budget: the clean point at eps = 0 anchors the interpolation.
    assert half_dice_budget([{"budget": 4, "dice": 0.2}], clean, "eps") == pytest.approx(4 * 0.4 / 0.6)
    # Never reached: None. q_max has no clean anchor, so a first point below half gives that budget.
    assert half_dice_budget([{"budget": 4, "dice": 0.7}], clean, "eps") is None
    assert half_dice_budget([{"budget": 10, "dice": 0.3}], clean, "q_max") == 10


def test_area_under_curve_is_trapezoidal_with_the_clean_point_at_zero():
    curve = [{"budget": 4, "dice": 0.6}, {"budget": 8, "dice": 0.2}]
    area, mean = area_under_curve(curve, 0.8, "eps")
    assert area == pytest.approx(4 * (0.8 + 0.6) / 2 + 4 * (0.6 + 0.2) / 2)
    assert mean == pytest.approx(area / 8)
    # Without a zero anchor (q_max) the area spans the given budgets only; one point has no area.
    assert area_under_curve(curve, 0.8, "q_max") == (pytest.approx(1.6), pytest.approx(0.4))
    assert area_under_curve(curve[:1], 0.8, "q_max") == (None, None)


def test_summarise_gathers_curves_robust_dice_per_level_and_per_class_means():
    cells = [*CELLS, cell("a", "dfb", "high", 0.7, 0.98, budget_name="freq_band",
                          per_class={"liver": 0.6, "kidney": 0.8})]
    summary = summarise(cells, CLEAN)
    own = summary["per_model"]["m"]
    assert summary["levels"] == ["0.99", "0.95", "0.90"]
    assert own["clean_dice"] == pytest.approx(0.7)
    assert own["robust_dice"] == {"0.99": pytest.approx(0.475), "0.95": pytest.approx(0.45),
                                  "0.90": pytest.approx(0.2)}
    pgd = own["attacks"]["pgd"]
    assert [p["budget"] for p in pgd["curve"]] == [4, 8]
    assert [p["dice"] for p in pgd["curve"]] == [pytest.approx(0.55), pytest.approx(0.2)]
    assert pgd["half_dice_budget"] == pytest.approx(4 + (0.55 - 0.35) / (0.55 - 0.2) * 4)
    assert own["attacks"]["dfb"]["auc"] is None and own["attacks"]["dfb"]["half_dice_budget"] is None
    assert own["per_class"]["clean"] == {"liver": pytest.approx(0.7), "kidney": pytest.approx(0.7)}
    assert own["per_class"]["dfb high"] == {"liver": 0.6, "kidney": 0.8}


def test_robust_dice_never_rises_as_the_level_loosens_and_models_stay_apart():
    other = [dict(c, model="n", dice=c["dice"] / 2) for c in CELLS]
    summary = summarise([*CELLS, *other], [*CLEAN, *(dict(r, model="n") for r in CLEAN)])
    for model in ("m", "n"):
        values = [summary["per_model"][model]["robust_dice"][k] for k in summary["levels"]]
        assert values == sorted(values, reverse=True)
    assert summary["models"] == ["m", "n"]
    assert summary["per_model"]["n"]["robust_dice"]["0.90"] == pytest.approx(0.1)


@pytest.mark.parametrize("level", [0.99, 0.95, 0.90])
def test_a_cell_exactly_on_a_level_counts_at_that_level(level):
    on_the_level = [cell("a", "pgd", 4, 0.1, level), cell("a", "pgd", 8, 0.05, level - 1e-9)]
    result = robust_dice(on_the_level, CLEAN[:1], "m", level)
    assert result["cases"]["a"] == {"dice": 0.1, "attack": "pgd", "budget": 4}
    summary = summarise(on_the_level, CLEAN[:1], (level,))
    assert summary["per_model"]["m"]["robust_dice"][f"{level:.2f}"] == pytest.approx(0.1)
