"""How much weaker is a level's projection than a fresh attack run? Measured side by side (a script, not a test).

The level search (:mod:`SpectrumAttackLib.attacks.ssim_target`) may settle a 3-D SSIM level with the projection
``clean + λ·(run_b − clean)`` of a run at budget ``b`` (λ ≥ 0.9), instead of a fresh run. The caution in the
literature: an interpolation between the clean image and a fixed adversarial one is weaker than an attack optimised
at the smaller budget. This script measures it on the sample CT with the bundled model, in the audit's setting
(model grid, tiles, the quick preset's parameters and steps, seed 0): for each attack and budget ``b`` and each λ,
the fresh run at ``λ·b`` against the projection of the run at ``b`` by λ: 3-D SSIM and mean foreground Dice of
both (the reference labels), and their differences. A weaker projection shows a higher Dice at an equal or higher
SSIM; a projection with a higher SSIM and the same Dice is at least as strong at equal perceptibility.

Measured at this commit (AMD EPYC, 2 threads, slices 80:): PGD ε 1.2 / 2 / 3 — same SSIM to 0.0002, Dice −0.0002
to +0.0012; SA² ρ 0.05 / 0.1 / 0.2 — SSIM higher by up to 0.0026, Dice within 0.0017. Reported, not a target.

Usage::

    python bench/projection_strength.py --threads 2                 # slices 80: of img0001
    python bench/projection_strength.py --threads 2 --quick         # one budget per attack, λ 0.9
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit_cost import _slab, prepare_machine

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.audit.grid import PRESETS
from SpectrumAttackLib.data.sample_data import ensure_sample_data
from SpectrumAttackLib.inference.sliding import predict_logits
from SpectrumAttackLib.inference.tiles import attack_volume
from SpectrumAttackLib.io.volumes import read_volume
from SpectrumAttackLib.metrics.surface_distance import dice_per_class
from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.workflows.robustness import volume_case

#: attack → (its knob, the budgets b whose runs are projected)
BUDGETS = {"pgd": ("eps", (1.2, 2.0, 3.0)), "saa": ("rho", (0.05, 0.1, 0.2))}
WEIGHTS = (0.95, 0.9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="img0001")
    parser.add_argument("--slices", default="80:", help="axial slab start:stop of the case")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="the middle budget of each attack and λ 0.9 only")
    args = parser.parse_args()
    device = prepare_machine(args.threads, args.device)

    root = ensure_sample_data()
    image = read_volume(root / "imagesTr" / f"{args.case}.nii.gz")
    labels = read_volume(root / "labelsTr" / f"label{args.case[3:]}.nii.gz")
    loaded = load_model("unet-btcv-3mm", device)
    array, affine = _slab(image.array, image.affine, args.slices)
    label_array, _ = _slab(labels.array, labels.affine, args.slices)
    case = volume_case((array, affine), label_array, preprocessing=loaded.entry.preprocessing,
                       name=args.case).load()
    images, reference = case.images.to(device), case.labels.to(device)
    roi, classes = tuple(loaded.entry.preprocessing.roi), loaded.entry.num_classes
    ssim = VolumeSSIM(images[0, 0])
    print(f"case {args.case} slices {args.slices}, model grid {list(images.shape[2:])}, ROI {list(roi)}")

    def dice(adversarial: torch.Tensor) -> float:
        seg = class_map(predict_logits(loaded.model, adversarial, roi, 0.5, 1, precision="auto"))
        per_class = dice_per_class(seg[0, 0].cpu().numpy(), reference[0, 0].cpu().numpy(), classes,
                                   ignore_empty=True)
        return float(torch.nanmean(torch.as_tensor(per_class[1:])))

    def run(name: str, knob: str, budget: float) -> torch.Tensor:
        params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in PRESETS["quick"]["attacks"][name]["params"].items()}
        attack = attacks.create(name, loaded.model, **params, **{knob: budget}, seed=0, precision="auto")
        return attack_volume(attack, images, reference, roi=roi, mode="tiles", tile_batch_size=4).adversarial

    weights = (0.9,) if args.quick else WEIGHTS
    print(f"{'attack':<6} {'b':>5} {'λ':>5}  {'fresh SSIM':>10} {'fresh Dice':>10}  {'proj. SSIM':>10} "
          f"{'proj. Dice':>10}  {'ΔSSIM':>7} {'ΔDice':>7}")
    for name, (knob, budgets) in BUDGETS.items():
        for budget in budgets[1:2] if args.quick else budgets:
            strong = run(name, knob, budget)
            for weight in weights:
                fresh = run(name, knob, weight * budget)
                projected = images + weight * (strong - images)
                f_ssim, p_ssim = ssim(fresh[0, 0]), ssim(projected[0, 0])
                f_dice, p_dice = dice(fresh), dice(projected)
                print(f"{name:<6} {budget:>5.3g} {weight:>5.2f}  {f_ssim:>10.4f} {f_dice:>10.4f}  {p_ssim:>10.4f} "
                      f"{p_dice:>10.4f}  {p_ssim - f_ssim:>+7.4f} {p_dice - f_dice:>+7.4f}")
    print("ΔSSIM, ΔDice: projection − fresh run (ΔDice > 0 at ΔSSIM ≤ 0: the projection is weaker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
