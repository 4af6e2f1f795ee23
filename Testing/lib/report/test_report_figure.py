"""The per-case report PNG: file, size, panels, and its building blocks (amplification, centre, spectrum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import image as mimage

from SpectrumAttackLib.metrics.evaluate import compute_case_metrics
from SpectrumAttackLib.report.figure import (
    amplification_factor,
    foreground_centre,
    perturbation_spectrum,
    write_case_report,
)
from SpectrumAttackLib.transforms import idct_nd, merge_blocks_3d

NAMES = ["background", "liver", "spleen"]
COLOURS = ["black", "#ff0000", (0, 200, 0)]
SIZE = 24


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.2, 0.8, (SIZE,) * 3).astype(np.float32)
    adv = np.clip(clean + rng.uniform(-0.03, 0.03, clean.shape), 0, 1).astype(np.float32)
    seg = np.zeros(clean.shape, dtype=np.int64)
    seg[4:12, 6:14, 8:16] = 1
    seg[14:20, 14:20, 14:20] = 2
    seg_adv = np.roll(seg, 2, axis=0)
    return clean, adv, seg, seg_adv


def test_report_png_has_all_panels(case, tmp_path):
    clean, adv, seg, seg_adv = case
    metrics = compute_case_metrics(clean, adv, seg, seg_adv, num_classes=3, class_names=NAMES)
    path = tmp_path / "reports" / "case_01.png"
    fig = write_case_report(
        path, clean, adv, seg, seg_adv, class_names=NAMES, class_colors=COLOURS, metrics=metrics,
        title="case_01 saa", dpi=30,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mimage.imread(path)
    assert pixels.shape[:2] == (300, 510)  # 10 × 17 inches at 30 dpi
    assert pixels[..., :3].std() > 0.05  # something was drawn
    assert len(fig.axes) == 12
    titles = [ax.get_title() for ax in fig.axes]
    assert sum("axial" in t for t in titles) == 5 and sum("coronal" in t for t in titles) == 5
    assert any(t.startswith("perturbation ×20 ") for t in titles)  # max |δ| 0.03 → ×20
    spectrum_ax = next(ax for ax in fig.axes if ax.get_title().startswith("perturbation spectrum"))
    assert spectrum_ax.get_yscale() == "log"
    dice_ax = next(ax for ax in fig.axes if ax.get_title() == "Dice per organ")
    assert [t.get_text() for t in dice_ax.get_xticklabels()] == ["liver", "spleen"]
    assert len(dice_ax.patches) == 4  # 2 organs × (clean, adversarial)
    assert "case_01 saa" in fig.get_suptitle() and "clinical preset" in fig.get_suptitle()


def test_report_without_metrics_and_with_torch_inputs(case, tmp_path):
    clean, _, seg, seg_adv = (torch.from_numpy(v)[None, None] for v in case)
    fig = write_case_report(
        tmp_path / "r.png", clean, clean, seg, seg_adv, class_names=NAMES, class_colors=COLOURS,
        metrics=None, block_size=4, dpi=20,
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert "perturbation spectrum, 4×4×4 blocks" in titles
    assert any(t.startswith("perturbation ×1 (max |δ| 0)") for t in titles)
    assert (tmp_path / "r.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"class_colors": ["black", "red"]}, "class_colors"),
        ({"class_colors": ["black", "red", "not-a-colour"]}, "class_colors"),
        ({"class_names": ["background", "liver"], "class_colors": ["k", "r"]}, "seg_clean"),
        ({"block_size": (32, 8, 8)}, "block_size"),
        ({"block_size": (8, 8)}, "block_size"),
    ],
)
def test_bad_arguments_name_the_parameter(case, tmp_path, kwargs, parameter):
    clean, adv, seg, seg_adv = case
    arguments = {"class_names": NAMES, "class_colors": COLOURS, "metrics": None, **kwargs}
    with pytest.raises(ValueError, match=parameter):
        write_case_report(tmp_path / "r.png", clean, adv, seg, seg_adv, **arguments)
    assert not (tmp_path / "r.png").exists()


def test_shape_mismatch_is_rejected(case, tmp_path):
    clean, adv, seg, seg_adv = case
    with pytest.raises(ValueError, match="seg_adv"):
        write_case_report(
            tmp_path / "r.png", clean, adv, seg, seg_adv[:8], class_names=NAMES, class_colors=COLOURS, metrics=None
        )


@pytest.mark.parametrize(
    ("max_abs", "factor"),
    [(0.0, 1.0), (1.0, 1.0), (0.3, 2.0), (0.0488, 20.0), (0.001, 1000.0), (0.0011, 500.0), (0.05, 20.0)],
)
def test_amplification_factor(max_abs, factor):
    assert amplification_factor(max_abs) == pytest.approx(factor)
    assert amplification_factor(max_abs) * max_abs <= 1.0


def test_foreground_centre():
    seg = np.zeros((12, 12, 14), dtype=np.int64)
    assert foreground_centre(seg) == (6, 6, 7)  # empty: the volume centre
    seg[2:5, 4:7, 6:9] = 1
    assert foreground_centre(seg) == (3, 5, 7)
    other = np.zeros_like(seg)
    other[8:11, 4:7, 6:9] = 2
    assert foreground_centre(seg, other) == (6, 5, 7)  # the union of both maps


def test_spectrum_of_one_basis_function_per_block():
    block = (4, 4, 8)
    coefs = torch.zeros(1, 1, 4 * 4 * 2, *block)  # a 16 × 16 × 16 volume in 4 × 4 × 8 blocks
    coefs[..., 1, 0, 2] = 0.5
    perturbation = merge_blocks_3d(idct_nd(coefs, 3), (16, 16, 16))[0, 0].numpy()
    spectrum, radius = perturbation_spectrum(perturbation, block)
    assert spectrum.shape == block and radius.shape == block
    assert spectrum[1, 0, 2] == pytest.approx(0.5, abs=1e-6)
    spectrum[1, 0, 2] = 0
    assert np.abs(spectrum).max() < 1e-6
    assert radius[1, 0, 2] == pytest.approx(1 / 4 + 2 / 8)
    assert radius[0, 0, 0] == 0.0
