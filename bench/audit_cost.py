"""Cost of the robustness audit against its attacks run on their own, measured side by side (a script, not a test).

The ``quick`` preset (or ``--preset``) on a sample CT with the bundled model ``unet-btcv-3mm``:

1. the audit (:func:`SpectrumAttackLib.workflows.audit`, nothing written): wall time, cells, seconds per cell,
   and the sum of its attacks' own optimisation time (``attack_volume``'s seconds, inside the audit);
2. every cell of the same grid run on its own as a single attack job
   (:func:`~SpectrumAttackLib.workflows.single.attack_single_volume`: preprocessing, clean prediction, attack,
   adversarial prediction, metrics — what ``spectrum-attack demo`` or the Slicer module runs for one attack).

Printed ratios: audit wall time / sum of the single attack jobs (target ≤ 1.10: the audit adds little beyond the
attacks; it saves the clean prediction of every cell after the first), and audit wall time / sum of the bare
attack optimisation time (what prediction and scoring add on top of the optimisation itself).

Usage::

    python bench/audit_cost.py --threads 2                      # img0001, the whole CT
    python bench/audit_cost.py --threads 2 --slices 56:         # its upper (abdominal) 56 slices, faster
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpectrumAttackLib.audit.grid import resolve_grid
from SpectrumAttackLib.data.sample_data import ensure_sample_data
from SpectrumAttackLib.io.volumes import read_volume
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.runtime import device_info, resolve_device
from SpectrumAttackLib.workflows.robustness import audit
from SpectrumAttackLib.workflows.single import attack_single_volume

TARGET = 1.10


def _slab(array, affine, slices: str):
    """The axial slab ``start:stop`` of an IJK array and its shifted affine."""
    start, _, stop = slices.partition(":")
    start, stop = int(start or 0), int(stop) if stop else array.shape[2]
    shifted = affine.copy()
    shifted[:3, 3] += affine[:3, 2] * start
    return array[:, :, start:stop], shifted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--case", default="img0001", help="sample case (img0001 is the model's training CT)")
    parser.add_argument("--slices", default=":", help="axial slab start:stop of the case (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device_info()["gpu"]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}{f' ({gpu})' if gpu else ''}")

    root = ensure_sample_data()
    image = read_volume(root / "imagesTr" / f"{args.case}.nii.gz")
    labels = read_volume(root / "labelsTr" / f"label{args.case[3:]}.nii.gz")
    array, affine = _slab(image.array, image.affine, args.slices)
    label_array, _ = _slab(labels.array, labels.affine, args.slices)
    loaded = load_model("unet-btcv-3mm", device)
    grid = resolve_grid(args.preset)
    print(f"case {args.case} slices {args.slices} shape {list(array.shape)}, preset {args.preset}: "
          f"{len(grid.cells())} cells")

    start = time.perf_counter()
    result = audit((array, affine), labels=label_array, models={"unet-btcv-3mm": loaded}, grid=grid, name=args.case)
    audit_wall = time.perf_counter() - start
    attack_own = sum(c["seconds"] for c in result.cells)

    singles = 0.0
    for entry, budget in grid.cells():
        start = time.perf_counter()
        attack_single_volume((array, affine), model=loaded, attack=entry.attack, params=entry.cell_params(budget),
                             reference_labels=label_array, metrics_preset="clinical")
        singles += time.perf_counter() - start

    cells = len(result.cells)
    print(f"audit wall time          {audit_wall:8.1f} s  ({cells} cells, {audit_wall / cells:.1f} s per cell)")
    print(f"sum of single attack jobs{singles:8.1f} s")
    print(f"sum of attack optimisation{attack_own:7.1f} s")
    ratio = audit_wall / singles
    print(f"ratio audit / single attack jobs   {ratio:.3f}  (target <= {TARGET:.2f}: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    print(f"ratio audit / attack optimisation  {audit_wall / attack_own:.3f}  (prediction and scoring on top)")
    own = result.summary["per_model"]["unet-btcv-3mm"]
    print("robust Dice " + ", ".join(f"SSIM>={k}: {v:.3f}" for k, v in own["robust_dice"].items())
          + f" (clean {own['clean_dice']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
