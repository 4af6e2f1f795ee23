"""Cost of the robustness audit against its attacks run on their own, measured side by side (a script, not a test).

The ``quick`` preset (or ``--preset``) on a sample CT with the bundled model ``unet-btcv-3mm``:

1. the audit (:func:`SpectrumAttackLib.workflows.audit`, nothing written): wall time, cells, seconds per cell,
   and the sum of its attacks' own optimisation time (``attack_volume``'s seconds, inside the audit);
2. every cell of the same grid run on its own as a single attack job
   (:func:`~SpectrumAttackLib.workflows.single.attack_single_volume`: preprocessing, clean prediction, attack,
   adversarial prediction, metrics — what ``spectrum-attack demo`` or the Slicer module runs for one attack).

Printed ratios: audit wall time / sum of the single attack jobs (target ≤ 1.10: the audit adds little beyond the
attacks; it saves the clean prediction of every cell after the first), audit wall time / sum of the bare attack
optimisation time (target ≤ 1.15: what prediction and scoring add on top of the optimisation itself), and audit
wall time / (optimisation + the sliding-window predictions): what the audit adds beyond the attacks and the one
prediction each cell needs (with few attack steps, or cells without optimisation such as noise, the predictions
alone can exceed 0.15 of the optimisation).

``--synthetic N`` replaces the sample CT by a synthetic N³ CT (smooth ellipsoid "organs" in HU, 1 mm voxels) and the
bundled model by a UNet whose sliding-window ROI is the whole N³ volume (channels 8/16/32), the case of a
large-input network; ``--synthetic 256`` is the issue's 256³ case, ``96`` a quick one. No single-job comparison is
run there. The UNet is first fitted to the synthetic labels (``--fit_steps`` Adam steps on 32³ crops, seeded; not
timed), so that its segmentation, and with it the surfaces HD95 measures, is a trained network's: with random
weights (``--fit_steps 0``) it segments the noise, whose surfaces fill the volume and make HD95 an order of
magnitude costlier than on any real prediction.

``--ssim_levels 0.99 0.97 0.95`` adds the exact SSIM levels to the audit and prints the attack runs each family's
search took per case to settle all levels (target ≤ 6; its first run is the grid's cell at that budget, reused, not
run again), with how each level was settled (a run in the band, or a run projected onto it, with its weight).
``--attacks saa gn`` keeps only those grid entries; ``--steps N`` overrides the preset's attack steps (the
audit's own ``steps``).

The audit's time is split into its parts, timed inside the audit itself: the attacks' own optimisation, the
sliding-window predictions (clean and adversarial), the 3-D SSIMs (the reported one and the search's), Dice and
HD95, and the rest (staging, records, PSNR, voxel counts). The machine (CPU model, cores, threads, GPU) and the load
average before and after are printed: timings on a shared machine are only comparable within one run.

Usage::

    python bench/audit_cost.py --threads 2                      # img0001, the whole CT
    python bench/audit_cost.py --threads 2 --slices 56:         # its upper (abdominal) 56 slices, faster
    python bench/audit_cost.py --threads 2 --slices 56: --ssim_levels 0.99 0.97 0.95 --no_singles
    python bench/audit_cost.py --threads 2 --synthetic 96       # a synthetic volume with a whole-volume ROI
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import os
import platform
import sys
import time
from collections.abc import Iterator
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
OPTIMISATION_TARGET = 1.15
RUNS_TARGET = 6


def _slab(array, affine, slices: str):
    """The axial slab ``start:stop`` of an IJK array and its shifted affine."""
    start, _, stop = slices.partition(":")
    start, stop = int(start or 0), int(stop) if stop else array.shape[2]
    shifted = affine.copy()
    shifted[:3, 3] += affine[:3, 2] * start
    return array[:, :, start:stop], shifted


def fit(net: torch.nn.Module, image, labels, steps: int, device: torch.device, crop: int = 32) -> None:
    """``steps`` Adam steps (lr 0.01, class-weighted cross-entropy) of ``net`` on random ``crop``³ pairs of crops of
    ``image`` [N, N, N] in [0, 1] and ``labels``; seeded by the caller's torch seed."""
    x = torch.from_numpy(image).float()[None, None].to(device)
    y = torch.from_numpy(labels)[None].to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    weight = torch.tensor([1.0, 3.0, 10.0], device=device)
    net.train()
    for _ in range(steps):
        corners = torch.randint(0, x.shape[2] - crop + 1, (2, 3)).tolist()
        boxes = [tuple(slice(c, c + crop) for c in corner) for corner in corners]
        loss = torch.nn.functional.cross_entropy(net(torch.cat([x[(0, slice(None), *b)][None] for b in boxes])),
                                                 torch.cat([y[(0, *b)][None] for b in boxes]), weight=weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def synthetic_case(size: int, device: torch.device, fit_steps: int = 150) -> tuple:
    """``(hu [N, N, N], labels, affine, LoadedModel)``: ellipsoid organs in HU and a UNet with an N³ ROI, fitted
    ``fit_steps`` steps to the labels."""
    import numpy as np
    from monai.networks.nets import UNet

    from SpectrumAttackLib.models.catalogue import ClassInfo, ModelEntry, Preprocessing
    from SpectrumAttackLib.models.loading import LoadedModel

    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, size)] * 3, indexing="ij"))
    hu = np.full((size,) * 3, -100.0, dtype=np.float32)
    labels = np.zeros((size,) * 3, dtype=np.int64)
    for index, (centre, radii, value) in enumerate((((0.2, 0.0, 0.0), (0.35, 0.3, 0.4), 60.0),
                                                    ((-0.4, 0.3, 0.1), (0.15, 0.15, 0.2), 30.0)), start=1):
        inside = sum(((grid[a] - centre[a]) / radii[a]) ** 2 for a in range(3)) <= 1
        hu[inside], labels[inside] = value, index
    hu += np.random.default_rng(0).normal(0, 10, hu.shape).astype(np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(8, 16, 32), strides=(2, 2),
                   num_res_units=1).to(device)
        fit(net, np.clip((hu + 175.0) / 425.0, 0.0, 1.0), labels, fit_steps, device)
    net.eval()
    entry = ModelEntry(name=f"unet-roi{size}", architecture="unet", num_classes=3,
                       classes=tuple(ClassInfo(i, n, (80 * i, 200 - 80 * i, 90))
                                     for i, n in enumerate(("background", "organ", "lesion"))),
                       preprocessing=Preprocessing(orientation="RAS", spacing_mm=(1.0, 1.0, 1.0), a_min=-175.0,
                                                   a_max=250.0, b_min=0.0, b_max=1.0, roi=(size,) * 3),
                       arguments={"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1})
    return hu, labels, np.eye(4), LoadedModel(model=net, entry=entry)


#: the audit's parts, timed by wrapping what the audit calls: (label, module or ``module:Class``, attribute).
PARTS = (
    ("prediction", "SpectrumAttackLib.inference.sliding", "predict_logits"),
    ("3-D SSIM", "SpectrumAttackLib.metrics.volume_ssim:VolumeSSIM", "__init__"),
    ("3-D SSIM", "SpectrumAttackLib.metrics.volume_ssim:VolumeSSIM", "__call__"),
    ("Dice + HD95", "SpectrumAttackLib.metrics.evaluate", "overlap_per_class"),
)


@contextlib.contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    """Seconds spent in each of :data:`PARTS` while the block runs (the wrapped callables return what they did)."""
    seconds: dict[str, float] = {label: 0.0 for label, _, _ in PARTS}
    originals = []
    for label, owner_name, attribute in PARTS:
        module_name, _, class_name = owner_name.partition(":")
        module = importlib.import_module(module_name)
        module = getattr(module, class_name) if class_name else module
        original = getattr(module, attribute)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - start

        originals.append((module, attribute, original))
        setattr(module, attribute, wrapper)
    try:
        yield seconds
    finally:
        for module, attribute, original in originals:
            setattr(module, attribute, original)


def machine() -> str:
    """CPU model, cores, torch threads, device and GPU, and the load average now."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def prepare_machine(threads: int | None, device_name: str) -> torch.device:
    """Set the torch threads, resolve the device and print the machine line; returns the device."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    gpu = device_info()["gpu"]
    print(f"machine: {machine()}, device {device}{f' ({gpu})' if gpu else ''}; {load()}")
    return device


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def print_levels(cells: list) -> None:
    """Attack runs per family and case to reach every exact SSIM level (a search's runs are shared)."""
    runs: dict[tuple[str, str], tuple[int, int]] = {}
    status: dict[tuple[str, str], list[str]] = {}
    for cell in cells:
        if "ssim_level" in cell:
            key, search = (cell["attack"], cell["case"]), cell["ssim_search"]
            runs[key] = max(runs.get(key, (0, 0)), (search["runs"], search["reused"]))
            weight = f"×{search['weight']:.3f}" if search["weight"] != 1 else ""
            status.setdefault(key, []).append(f"{cell['ssim_level']}: {search['status']} "
                                              f"{cell['budget_name']}={cell['budget']:.4g}{weight} "
                                              f"SSIM {cell['ssim_3d']:.4f}")
    for (attack, case), (count, reused) in runs.items():
        print(f"  {attack:<26} {case}: {count} attack runs for all levels, {reused} of them the grid's own cell "
              f"({'ok' if count <= RUNS_TARGET else 'MISSED'}, target <= {RUNS_TARGET}); "
              + "; ".join(status[(attack, case)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--case", default="img0001", help="sample case (img0001 is the model's training CT)")
    parser.add_argument("--slices", default=":", help="axial slab start:stop of the case (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="a synthetic N³ CT and a UNet with an N³ ROI instead of the sample CT and bundled model")
    parser.add_argument("--ssim_levels", type=float, nargs="+", default=None, help="exact 3-D SSIM levels to add")
    parser.add_argument("--no_singles", action="store_true", help="skip the single attack jobs")
    parser.add_argument("--attacks", nargs="+", default=None, help="keep only these grid entries")
    parser.add_argument("--steps", type=int, default=None, help="attack steps instead of the preset's")
    parser.add_argument("--fit_steps", type=int, default=150,
                        help="steps fitting the synthetic UNet to its labels (0: random weights)")
    args = parser.parse_args()
    device = prepare_machine(args.threads, args.device)

    grid = resolve_grid(args.preset)
    if args.attacks:
        grid = dataclasses.replace(grid, attacks=tuple(e for e in grid.attacks if e.name in args.attacks))
    if args.synthetic:
        array, label_array, affine, loaded = synthetic_case(args.synthetic, device, args.fit_steps)
        label = (f"synthetic {args.synthetic}³ CT, UNet with a {args.synthetic}³ ROI "
                 f"({f'fitted {args.fit_steps} steps' if args.fit_steps else 'random weights'})")
    else:
        root = ensure_sample_data()
        image = read_volume(root / "imagesTr" / f"{args.case}.nii.gz")
        labels = read_volume(root / "labelsTr" / f"label{args.case[3:]}.nii.gz")
        array, affine = _slab(image.array, image.affine, args.slices)
        label_array, _ = _slab(labels.array, labels.affine, args.slices)
        loaded = load_model("unet-btcv-3mm", device)
        label = f"case {args.case} slices {args.slices}"
    name = loaded.entry.name
    print(f"{label}, shape {list(array.shape)}, preset {args.preset}: {len(grid.cells())} cells"
          + (f", SSIM levels {args.ssim_levels}" if args.ssim_levels else ""))

    start = time.perf_counter()
    with timed_parts() as parts:
        result = audit((array, affine), labels=label_array, models={name: loaded}, grid=grid, name=args.case,
                       ssim_levels=args.ssim_levels, steps=args.steps)
    audit_wall = time.perf_counter() - start
    attack_own = sum(c["seconds"] for c in result.cells)
    cells = len(result.cells)
    print(f"audit wall time          {audit_wall:8.1f} s  ({cells} cells, {audit_wall / cells:.1f} s per cell); "
          f"{load()}")
    breakdown = {"attack optimisation": attack_own, **parts}
    breakdown["other"] = audit_wall - sum(breakdown.values())
    for label, seconds in breakdown.items():
        print(f"  {label:<24}{seconds:8.1f} s  ({seconds / attack_own:.3f} of the attacks' optimisation)")
    ratio = audit_wall / attack_own
    print(f"ratio audit / attack optimisation  {ratio:.3f}  (target <= {OPTIMISATION_TARGET:.2f}: "
          f"{'met' if ratio <= OPTIMISATION_TARGET else 'NOT met'}; prediction, scoring and the search's SSIM on top)")
    floor = attack_own + parts["prediction"]
    print(f"ratio audit / (attack optimisation + predictions)  {audit_wall / floor:.3f}  (scoring, the search's SSIM "
          f"and projections, records: what the audit adds to the attacks and the predictions it cannot do without)")
    if not args.synthetic and not args.no_singles and not args.ssim_levels:
        singles = 0.0
        for entry, budget in grid.cells():
            start = time.perf_counter()
            attack_single_volume((array, affine), model=loaded, attack=entry.attack,
                                 params=entry.cell_params(budget), reference_labels=label_array,
                                 metrics_preset="clinical")
            singles += time.perf_counter() - start
        print(f"sum of single attack jobs{singles:8.1f} s")
        print(f"ratio audit / single attack jobs   {audit_wall / singles:.3f}  (target <= {TARGET:.2f}: "
              f"{'met' if audit_wall / singles <= TARGET else 'NOT met'})")
    own = result.summary["per_model"][name]
    print("robust Dice " + ", ".join(f"SSIM>={k}: {v:.3f}" for k, v in own["robust_dice"].items())
          + f" (clean {own['clean_dice']:.3f})")
    if args.ssim_levels:
        print("exact SSIM levels: "
              + ", ".join(f"{k}: robust Dice {v['dice']:.3f}" for k, v in own["at_levels"].items()))
        print_levels(result.cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
