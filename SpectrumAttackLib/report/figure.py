"""One PNG per case: what the attack changed in the image, in the spectrum and in the segmentation.

Layout (3 rows × 5 columns, 12 panels):

* rows 1–2, axial and coronal slices through the centre of the foreground: clean image, adversarial image,
  amplified perturbation (symmetric colormap, factor in the title), clean and adversarial segmentations over
  their images in the class colours;
* row 3: the mean |DCT| of the perturbation over all blocks (block DCT of ``transforms``) as a function of the
  normalised frequency radius ``Σ_a i_a / b_a``, with the reference's low and high bands shaded, and per-organ
  Dice bars, clean vs adversarial.

Drawn with matplotlib's Agg canvas on a standalone ``Figure`` (no pyplot state, no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from SpectrumAttackLib.checks import check_block_size
from SpectrumAttackLib.metrics.evaluate import to_volume
from SpectrumAttackLib.transforms import band_mask, check_blocks_fit, dct_nd, split_blocks_3d

__all__ = ["amplification_factor", "foreground_centre", "perturbation_spectrum", "write_case_report"]

_DEFAULT_BLOCK = (8, 8, 8)
_OVERLAY_ALPHA = 0.5


def foreground_centre(*segmentations: np.ndarray) -> tuple[int, int, int]:
    """Rounded centre of mass of the voxels labelled > 0 in any of the ``[H, W, D]`` maps; the volume centre if none."""
    mask = np.zeros(segmentations[0].shape, dtype=bool)
    for seg in segmentations:
        mask |= seg > 0
    if not mask.any():
        return tuple(int(n // 2) for n in mask.shape)
    return tuple(round(float(idx.mean())) for idx in np.nonzero(mask))


def amplification_factor(max_abs: float) -> float:
    """The largest 1-2-5 factor (1, 2, 5, 10, 20, …) that keeps ``factor · max_abs`` ≤ 1; 1 for no perturbation."""
    if max_abs <= 0 or max_abs >= 1:
        return 1.0
    exponent = int(np.floor(np.log10(1.0 / max_abs)))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent) for m in (1.0, 2.0, 5.0)]  # e - 1: log10 rounding
    return max(c for c in candidates if c * max_abs <= 1.0)


def perturbation_spectrum(perturbation: np.ndarray, block_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean |DCT coefficient| of a perturbation over all blocks, per coefficient.

    Args:
        perturbation: ``[H, W, D]`` adversarial − clean.
        block_size: ``(b1, b2, b3)``; blocks are cut and padded as in :func:`transforms.split_blocks_3d`.

    Returns:
        ``(spectrum, radius)``: two ``[b1, b2, b3]`` arrays, the mean |coefficient| and the normalised
        frequency radius ``Σ_a i_a / b_a`` of each coefficient (0 at DC).
    """
    x = torch.from_numpy(np.ascontiguousarray(perturbation, dtype=np.float32))[None, None]
    coefs = dct_nd(split_blocks_3d(x, block_size), 3)  # [1, 1, N, b1, b2, b3]
    spectrum = coefs.abs().mean(dim=(0, 1, 2)).double().numpy()
    grids = np.meshgrid(*[np.arange(b) / b for b in block_size], indexing="ij")
    return spectrum, sum(grids)


def _rgb_table(class_colors: Sequence[Any]) -> np.ndarray:
    """``[K, 4]`` RGBA overlay table; class 0 (background) transparent. Colours: names, hex, 0–1 or 0–255 RGB."""
    table = np.zeros((len(class_colors), 4))
    for k, colour in enumerate(class_colors):
        if not isinstance(colour, str) and len(colour) >= 3 and max(colour[:3]) > 1:
            colour = tuple(c / 255.0 for c in colour[:3])
        try:
            table[k, :3] = mcolors.to_rgb(colour)
        except ValueError:
            raise ValueError(
                f"class_colors must hold colour names, hex strings or RGB triples, got {colour!r} for class {k}."
            ) from None
        table[k, 3] = 0.0 if k == 0 else _OVERLAY_ALPHA
    return table


def _show(ax: Axes, image: np.ndarray, aspect: float, title: str, **kwargs: Any) -> None:
    """Show a 2D slice ``[rows=first axis, cols=second axis]`` with the first volume axis horizontal."""
    ax.imshow(image.T, origin="lower", aspect=aspect, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _summary(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return ""
    clean, adv = metrics.get("clean", {}), metrics.get("adversarial", {})
    unit = metrics.get("units", {}).get("hd95", "")
    return (
        f"Dice {_fmt(clean.get('dice'))} → {_fmt(adv.get('dice'))}   "
        f"HD95 {_fmt(clean.get('hd95'), 1)} → {_fmt(adv.get('hd95'), 1)} {unit}   "
        f"SSIM {_fmt(adv.get('ssim'))}   PSNR {_fmt(adv.get('psnr'), 1)} dB   "
        f"fooling rate {_fmt(adv.get('fooling_rate'))}   ({metrics.get('preset', '?')} preset, "
        f"reference: {metrics.get('reference', '?')})"
    )


def _spectrum_panel(ax: Axes, perturbation: np.ndarray, block_size: tuple[int, int, int]) -> None:
    spectrum, radius = perturbation_spectrum(perturbation, block_size)
    radii = np.unique(np.round(radius, 6))
    profile = np.array([spectrum[np.isclose(radius, r)].mean() for r in radii])
    low, high = band_mask(block_size, "low").numpy(), band_mask(block_size, "high").numpy()
    middle = ~(low | high)
    ax.axvspan(radii[0], radius[low].max(), color="tab:blue", alpha=0.15, lw=0)
    ax.axvspan(radius[high].min(), radii[-1], color="tab:red", alpha=0.15, lw=0)
    label = ", ".join(f"{n} {spectrum[m].mean():.2e}" for n, m in (("low", low), ("mid", middle), ("high", high)))
    if profile.max() > 0:
        ax.semilogy(radii[profile > 0], profile[profile > 0], "k.-", lw=1, ms=3, label=f"band means: {label}")
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no perturbation", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("frequency radius Σ i/b (0 = DC)", fontsize=8)
    ax.set_ylabel("mean |DCT coefficient|", fontsize=8)
    ax.set_title(f"perturbation spectrum, {block_size[0]}×{block_size[1]}×{block_size[2]} blocks", fontsize=9)
    ax.tick_params(labelsize=7)


def _dice_panel(ax: Axes, metrics: Mapping[str, Any] | None, background: str) -> None:
    clean = dict((metrics or {}).get("clean", {}).get("dice_per_class", {}))
    adv = dict((metrics or {}).get("adversarial", {}).get("dice_per_class", {}))
    organs = [name for name in clean if name != background]
    ax.set_title("Dice per organ", fontsize=9)
    if not organs:
        ax.text(0.5, 0.5, "no per-class Dice in metrics", ha="center", va="center", transform=ax.transAxes)
        return
    x = np.arange(len(organs))

    def heights(values: Mapping[str, Any]) -> list[float]:
        return [np.nan if values.get(n) is None else float(values[n]) for n in organs]

    for offset, values, name, colour in ((-0.2, clean, "clean", "tab:gray"), (0.2, adv, "adversarial", "tab:red")):
        bars = heights(values)
        ax.bar(x + offset, bars, 0.4, label=name, color=colour)
        for xi, h in zip(x + offset, bars, strict=True):
            if np.isnan(h):  # undefined (organ absent from both maps): say so instead of an empty slot
                ax.text(xi, 0.02, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(x, organs, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="upper right")


def write_case_report(
    path_png: str | os.PathLike,
    clean_image: np.ndarray | torch.Tensor,
    adv_image: np.ndarray | torch.Tensor,
    seg_clean: np.ndarray | torch.Tensor,
    seg_adv: np.ndarray | torch.Tensor,
    *,
    class_names: Sequence[str],
    class_colors: Sequence[Any],
    metrics: Mapping[str, Any] | None,
    block_size: Sequence[int] | int | None = None,
    title: str = "",
    spacing_mm: Sequence[float] | None = None,
    dpi: int = 100,
) -> Figure:
    """Draw the report of one case and save it as a PNG.

    Args:
        path_png: output file; parent folders are created.
        clean_image, adv_image: intensities in [0, 1].
        seg_clean, seg_adv: predicted label maps, values in ``[0, K)``.
        class_names: K names, background first (the background bar is left out).
        class_colors: K colours (names, hex, RGB in 0–1 or 0–255); the background colour is not drawn.
        metrics: the output of :func:`SpectrumAttackLib.metrics.evaluate.compute_case_metrics`, or ``None``.
        block_size: DCT block of the spectrum panel, ``(b1, b2, b3)`` or one int; default 8³ (clipped to the
            volume on small volumes).
        title: first line of the figure title (case id, attack).
        spacing_mm: voxel size for the slices' aspect ratio; default isotropic.
        dpi: PNG resolution (the figure is 17 × 10 inches).

    Shape:
        every volume ``[H, W, D]`` (numpy or torch), D the axial axis.

    Returns:
        The matplotlib ``Figure`` (12 axes), already saved and detached from any display.

    Raises:
        ValueError: volumes of different shapes, ``class_names``/``class_colors`` of different lengths, labels
            outside ``[0, K)``, an invalid colour or block size.
    """
    image = to_volume("clean_image", clean_image, integer=False)
    adv = to_volume("adv_image", adv_image, integer=False)
    segs = [to_volume("seg_clean", seg_clean, integer=True), to_volume("seg_adv", seg_adv, integer=True)]
    if adv.shape != image.shape or any(s.shape != image.shape for s in segs):
        shapes = [list(v.shape) for v in (image, adv, *segs)]
        raise ValueError(f"clean_image, adv_image, seg_clean and seg_adv must share one [H, W, D] shape, got {shapes}.")
    if len(class_names) != len(class_colors):
        raise ValueError(
            f"class_colors must have one colour per class name ({len(class_names)}), got {len(class_colors)}."
        )
    table = _rgb_table(class_colors)
    low, high = min(int(s.min()) for s in segs), max(int(s.max()) for s in segs)
    if low < 0 or high >= len(class_names):
        raise ValueError(
            f"seg_clean and seg_adv must hold class indices in [0, {len(class_names) - 1}] (one per class name), "
            f"got values in [{low}, {high}]."
        )
    blocks = check_block_size("block_size", block_size, 3) if block_size is not None else tuple(
        min(b, n) for b, n in zip(_DEFAULT_BLOCK, image.shape, strict=True)
    )
    check_blocks_fit(image.shape, blocks)
    spacing = (1.0, 1.0, 1.0) if spacing_mm is None else tuple(float(s) for s in spacing_mm)

    delta = adv - image
    max_abs = float(np.abs(delta).max())
    amp = amplification_factor(max_abs)
    _, cj, ck = foreground_centre(*segs)
    views = {  # name: (slice of an [H, W, D] volume, aspect of the shown 2D slice)
        f"axial k={ck}": ((slice(None), slice(None), ck), spacing[1] / spacing[0]),
        f"coronal j={cj}": ((slice(None), cj, slice(None)), spacing[2] / spacing[0]),
    }

    fig = Figure(figsize=(17, 10), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 5, height_ratios=(1, 1, 0.9))
    grey = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    for row, (view, (index, aspect)) in enumerate(views.items()):
        panels = [
            (image, "clean", grey),
            (adv, "adversarial", grey),
            (delta * amp, f"perturbation ×{amp:g} (max |δ| {max_abs:.3g})", {"cmap": "RdBu_r", "vmin": -1, "vmax": 1}),
        ]
        for col, (volume, name, style) in enumerate(panels):
            _show(fig.add_subplot(grid[row, col]), volume[index], aspect, f"{name}, {view}", **style)
        for col, (volume, seg, name) in enumerate(((image, segs[0], "clean"), (adv, segs[1], "adversarial")), 3):
            ax = fig.add_subplot(grid[row, col])
            _show(ax, volume[index], aspect, f"{name} segmentation, {view}", **grey)
            ax.imshow(table[seg[index]].transpose(1, 0, 2), origin="lower", aspect=aspect, interpolation="nearest")
    _spectrum_panel(fig.add_subplot(grid[2, :2]), delta, blocks)
    _dice_panel(fig.add_subplot(grid[2, 2:]), metrics, class_names[0])
    fig.suptitle("\n".join(t for t in (title, _summary(metrics)) if t), fontsize=10)

    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return fig
