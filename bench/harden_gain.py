"""What hardening buys: the bundled model fine-tuned with VAFT, audited before and after on the same grid (a script,
not a test).

1. ``unet-btcv-3mm`` fine-tuned by :func:`SpectrumAttackLib.workflows.harden.harden` (VAFT: clean + adversarial
   DiceCE + frequency regulariser; adversarial examples by ``--attack``, default VAFA-3D with the quick grid's 5
   steps and 16³ blocks) on the sample CT img0001, written to a temporary bundle;
2. both models audited together by :func:`SpectrumAttackLib.workflows.audit` on the same case and grid (the
   audit's ``quick`` preset: SA², VAFA, PGD, Gaussian noise and DFB, two budgets each, 5 steps, one seed), with
   every family also driven to the exact 3-D SSIM of ``--ssim_levels`` (default 0.95) per model
   (``attacks.at_ssim``);
3. printed per model: clean Dice; **worst-case robust Dice at exactly SSIM 0.95** (per family the strongest
   budget whose image stays at or above 0.95, found for each model; the lowest Dice over the families), the
   headline figure; per family the budget found, its SSIM and Dice; the grid's budgets before → after; and the
   grid-only robust Dice at SSIM ≥ 0.99 / 0.95 / 0.90.

Why the exact level is the headline: with fixed grid budgets the set of admissible attacks differs between the
two models. SA² at ρ 0.4 lands at SSIM 0.948 on the original model (excluded at 0.95) and 0.951 on the hardened
one (admitted), so the grid-only figure can fall while every attack does less harm to the hardened model. Driving
each family to the same SSIM for each model compares them at equal perceptibility.

Caveat the figures carry: the sample data is one patient's CT with TotalSegmentator *silver* labels, and img0001
is the case the bundled model was trained on (it segments nothing useful elsewhere); the fine-tuning and the
audit use the same volume. The figures show that the hardening loop works end to end and moves robust Dice in
the intended direction on this model; they are not a measure of generalisation.

Usage::

    python bench/harden_gain.py --threads 2 --quick    # 20 iterations of 1 crop, audit on the upper 56 slices
    python bench/harden_gain.py --threads 2            # 60 iterations of 2 crops, audit on the whole CT
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpectrumAttackLib.audit.summary import robust_dice
from SpectrumAttackLib.data.sample_data import ensure_sample_data
from SpectrumAttackLib.io.volumes import Volume, read_volume
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.runtime import Progress, device_info, resolve_device
from SpectrumAttackLib.workflows.harden import harden
from SpectrumAttackLib.workflows.robustness import audit

MODEL = "unet-btcv-3mm"


def _slab(volume: Volume, slices: str) -> Volume:
    """The axial slab ``start:stop`` of a volume, with its affine shifted to match."""
    start, _, stop = slices.partition(":")
    start, stop = int(start or 0), int(stop) if stop else volume.array.shape[2]
    affine = volume.affine.copy()
    affine[:3, 3] += volume.affine[:3, 2] * start
    return Volume(volume.array[:, :, start:stop], affine)


def _every_fifth(progress: Progress) -> None:
    """Print every fifth iteration's progress line (loss and ETA)."""
    if progress.stage == "train" and progress.done % 5 == 0 and "validation" not in progress.message:
        print(f"  {progress.message}", flush=True)


def _number(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted, or ``n/a`` where undefined (a family that never reached the level)."""
    return "n/a" if value is None else format(value, spec)


def _grid_only(outcome: Any, model: str, levels: list[str]) -> dict[str, dict]:
    """Robust Dice of ``model`` at SSIM ≥ each level over the grid's budgets only (no exact-level cells)."""
    cells = [c for c in outcome.cells if c.get("ssim_level") is None]
    return {level: robust_dice(cells, outcome.clean, model, float(level)) for level in levels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 iterations of 1 crop; audit on the upper 56 slices")
    parser.add_argument("--iterations", type=int, default=None, help="fine-tuning steps (default 60, quick 20)")
    parser.add_argument("--attack", default="vafa-3d", help="attack of the VAFT examples (default vafa-3d)")
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--crops", type=int, default=None, help="64³ crops per iteration (default 2, quick 1)")
    parser.add_argument("--slices", default=None, help="axial slab start:stop audited (default all, quick 56:)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ssim_levels", type=float, nargs="*", default=[0.95],
                        help="exact 3-D SSIM levels every family is driven to (default 0.95; none: grid only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    iterations = args.iterations or (20 if args.quick else 60)
    crops = args.crops or (1 if args.quick else 2)
    slices = args.slices or ("56:" if args.quick else ":")
    device = resolve_device(args.device)
    gpu = device_info()["gpu"]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}{f' ({gpu})' if gpu else ''}", flush=True)

    root = ensure_sample_data()
    image = read_volume(root / "imagesTr" / "img0001.nii.gz")
    labels = read_volume(root / "labelsTr" / "label0001.nii.gz")
    params = {"steps": 5, "block_size": 16} if args.attack in ("vafa-3d", "saa") else {"steps": 5}
    print(f"fine-tuning {MODEL}: VAFT, attack {args.attack} {params}, {iterations} iterations, lr "
          f"{args.learning_rate:g}, {crops} crops per iteration, on img0001 (whole CT)", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = harden([(image, labels)], MODEL, mode="vaft", attack=args.attack, params=params,
                        iterations=iterations, output=Path(folder) / "hardened", device=device,
                        learning_rate=args.learning_rate, crops=crops, seed=args.seed,
                        progress=_every_fifth)  # fmt: skip
        tuned = time.perf_counter() - start
        losses = [row["loss"] for row in result.history]
        print(f"harden: {tuned:.0f} s ({tuned / iterations:.1f} s per iteration); loss {losses[0]:.3f} → "
              f"{losses[-1]:.3f} (mean of the last 5: {sum(losses[-5:]) / len(losses[-5:]):.3f})")
        models = {MODEL: load_model(MODEL, device), f"{MODEL}-vaft": load_model(result.model_path, device)}
        case, case_labels = _slab(image, slices), _slab(labels, slices)
        print(f"audit: quick grid, img0001 slices {slices} {list(case.array.shape)}, both models, seed {args.seed}")
        start = time.perf_counter()
        outcome = audit((case.array, case.affine), labels=case_labels.array, models=models, grid="quick",
                        name="img0001", seed=args.seed, device=device, ssim_levels=args.ssim_levels or None)
        print(f"audit: {time.perf_counter() - start:.0f} s, {len(outcome.cells)} cells")
    summary = outcome.summary
    before, after = (summary["per_model"][name] for name in models)
    for level in before["at_levels"]:
        print(f"\nat exactly 3-D SSIM {level} (each family driven to it per model): Dice, budget found (SSIM, "
              "attack runs, status)")
        for name in models:
            at = summary["per_model"][name]["at_levels"][level]
            print(f"  {name:<22} worst case {_number(at['dice'])}")
            for attack, family in at["families"].items():
                weight = f"×{family['weight']:.3f}" if family["weight"] != 1 else ""
                print(f"    {attack:<8} Dice {_number(family['dice'])}  {family['budget_name']} "
                      f"{_number(family['budget'], '.4g')}{weight} (SSIM {_number(family['ssim_3d'])}, "
                      f"{_number(family['runs'], '.0f')} runs, {', '.join(family['status'])})")
        old, new = before["at_levels"][level]["dice"], after["at_levels"][level]["dice"]
        gain = None if old is None or new is None else new - old
        print(f"  robust Dice at SSIM {level}: {_number(old)} → {_number(new)} ({_number(gain, '+.4f')}); clean "
              f"Dice {before['clean_dice']:.4f} → {after['clean_dice']:.4f} "
              f"({after['clean_dice'] - before['clean_dice']:+.4f})")
    levels = summary["levels"]
    grid_only = {name: _grid_only(outcome, name, levels) for name in models}
    print(f"\ngrid budgets only: {'model':<22} clean Dice robust Dice at SSIM ≥ {' / '.join(levels)}")
    for name in models:
        robust = "  ".join(_number(grid_only[name][level]["dice"]) for level in levels)
        print(f"                   {name:<22} {summary['per_model'][name]['clean_dice']:.4f}     {robust}")
    print("\nper attack and grid budget: mean Dice (3-D SSIM), before → after")
    for attack, entry in before["attacks"].items():
        points = zip(entry["curve"], after["attacks"][attack]["curve"], strict=True)
        print(f"  {attack:<8} " + "  ".join(f"{b['budget']}: {b['dice']:.3f} ({b['ssim_3d']:.3f}) → {a['dice']:.3f} "
                                            f"({a['ssim_3d']:.3f})" for b, a in points))
    for level in levels:
        worst = [next(iter(grid_only[name][level]["cases"].values())) for name in models]
        print(f"  worst case at SSIM ≥ {level}: " + " → ".join(
            w["attack"] if w["budget"] is None else f"{w['attack']} {w['budget']}" for w in worst))
    old, new = (grid_only[name]["0.95"]["dice"] for name in models)
    print(f"\ngrid-only robust Dice at SSIM ≥ 0.95: {old:.4f} → {new:.4f} ({new - old:+.4f}); its admissible attacks "
          "differ between the models (see the module docstring)")
    print("caveat: one patient, TotalSegmentator silver labels, fine-tuned and audited on the same CT (the "
          "bundled model's own training case).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
