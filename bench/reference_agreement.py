"""SA² two ways on one CT tile: SpectrumAttack's engine against a loop written the reference's way (a script).

The reference loop follows ``asif-hanif/saa`` ``attacks/saa/saa.py`` (seed-algorithms §2.7): blocks cut one by one
(``dense_patch_slices``), torch-dct's ``dct_3d`` / ``idct_3d`` (``norm="ortho"``) on ``x − 0.5``, DC of ξ forced to
1, descent ``ξ ← clamp(ξ − β·sign(∇ξ L), 1 − ρ, 1 + ρ)`` on ``L = −λ_dice·DiceCE + λ_ssim·(1 − SSIM3D)`` with MONAI's
``DiceCELoss`` and pytorch-msssim's ``ssim`` on ``[B, C, D, H, W]``. Both start from the same ξ. The reference returns
the image of its last forward pass (ξ after T − 1 updates); to compare like with like, its image here is rendered
from ξ after T updates, which is what the engine returns (seed-algorithms §2.7; ``saa.py``'s docstring).

Printed per setting (the seed README's: 16³ blocks, ρ 0.4, λ_dice 0.2, SSIM λ 0.75, β 0.1; and the same with 8³
blocks):

* the sign agreement of the first update over the non-DC ξ entries (target ≥ 99.9 %): sign-gradient methods turn
  float rounding differences (matrix DCT vs FFT DCT, fused vs looped blocks) into opposite steps where a gradient
  entry is near 0;
* after T steps, each implementation's Dice (foreground, adversarial vs clean prediction), voxel flip rate and 3D
  SSIM, and their differences (target ≤ 0.003 each), plus the largest voxel difference of the two images;
* the time of the T steps of each.

The engine runs in ``precision="fp32"`` (pinned, as the unit tests do: ``"auto"`` would pick bf16 on CPUs with AMX or
AVX512-BF16 and compare a bf16 model pass with the fp32 reference loop). Where bf16 runs natively, one more line
reports the outcome of the engine in bf16 against the reference loop: Dice, flip rate and SSIM differences only (a
bf16 first step's sign agreement is not a meaningful target, and that line never fails the run).

Exit status 1 when a target is missed. The model is the seed's UNet (channels 32…512, strides 2, 2 residual units,
14 classes) with seeded random weights: agreement is about the optimisation, which needs no trained weights.

Usage::

    python bench/reference_agreement.py --threads 2                       # docs/fidelity.md figures (slow)
    python bench/reference_agreement.py --steps 3 --blocks 16 --tile 64   # a quicker, reduced check
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attack_cost import machine_name

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks import frozen_model
from SpectrumAttackLib.attacks.losses import ssim3d
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.precision import resolve_precision
from SpectrumAttackLib.runtime import make_generator, resolve_device

NUM_CLASSES = 14
SIGN_TARGET = 0.999
OUTCOME_TARGET = 0.003
#: The seed README's SA² command (seed-algorithms §2.8) with β = 0.1, the reference's hard-coded step.
README = {"rho": 0.4, "lambda_dice": 0.2, "use_ssim_loss": True, "lambda_ssim": 0.75, "beta": 0.1}


def load_tile(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``image [1, 1, s, s, s]`` in [0, 1] and ``label [1, 1, s, s, s]`` around the organs of the sample CT img0001,
    preprocessed as the reference does (RAS, 1.5 × 1.5 × 2 mm, window −175…250 HU, foreground crop)."""
    from monai.transforms import SpatialPad

    from SpectrumAttackLib.data.sample_data import ensure_sample_data
    from SpectrumAttackLib.data.transforms import DataConfig, eval_transforms

    root = ensure_sample_data()
    case = eval_transforms(DataConfig())({"image": str(root / "imagesTr" / "img0001.nii.gz"),
                                          "label": str(root / "labelsTr" / "label0001.nii.gz")})
    pad = SpatialPad((size, size, size))
    image, label = pad(case["image"].as_tensor()), pad(case["label"].as_tensor())
    centre = torch.nonzero(label[0] > 0).float().mean(0).round().long()
    start = [int(min(max(int(c) - size // 2, 0), n - size)) for c, n in zip(centre, label.shape[1:], strict=True)]
    box = tuple(slice(s, s + size) for s in start)
    return (image[(slice(None), *box)][None].float().to(device),
            label[(slice(None), *box)][None].long().to(device))


def seed_unet(device: torch.device) -> torch.nn.Module:
    from monai.networks.nets import UNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = UNet(spatial_dims=3, in_channels=1, out_channels=NUM_CLASSES, channels=(32, 64, 128, 256, 512),
                     strides=(2, 2, 2, 2), num_res_units=2)
    return model.to(device).eval()


def reference_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, xi: torch.Tensor, block: int,
                   steps: int, rho: float, lambda_dice: float, lambda_ssim: float,
                   beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """T updates the reference's way from ``xi``; returns (ξ after the first update, image from ξ after T)."""
    import torch_dct
    from monai.data.utils import dense_patch_slices
    from monai.losses import DiceCELoss
    from pytorch_msssim import ssim

    slices = dense_patch_slices(x.shape[2:], (block,) * 3, (block,) * 3)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=True, smooth_nr=0.0, smooth_dr=1e-6)

    def split(v: torch.Tensor) -> torch.Tensor:
        return torch.stack([v[(..., *s)] for s in slices], dim=2)

    def merge(blocks: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        for n, s in enumerate(slices):
            out[(..., *s)] = blocks[:, :, n]
        return out

    def render(factors: torch.Tensor) -> torch.Tensor:
        coefs = torch_dct.dct_3d(split(x) - 0.5, norm="ortho")  # recomputed every step, as in the reference
        applied = factors.clone()
        applied[..., 0, 0, 0] = 1.0  # DC never perturbed
        return merge(torch_dct.idct_3d(coefs * applied, norm="ortho")) + 0.5

    first = None
    for _ in range(steps):
        xi = xi.detach().requires_grad_(True)
        adv = render(xi)
        loss = -lambda_dice * loss_fn(model(adv), y)
        loss = loss + lambda_ssim * (1 - ssim(x.permute(0, 1, 4, 2, 3), adv.permute(0, 1, 4, 2, 3), data_range=1,
                                              win_size=3, nonnegative_ssim=True, size_average=True))
        (grad,) = torch.autograd.grad(loss, xi)
        xi = (xi.detach() - beta * grad.sign()).clamp(1 - rho, 1 + rho)
        if first is None:
            first = xi.clone()
    with torch.no_grad():
        return first, render(xi).clamp(0, 1)


def outcome(model: torch.nn.Module, x: torch.Tensor, adv: torch.Tensor, clean_pred: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        pred = model(adv).argmax(1, keepdim=True)
        return {"dice": float(dice_per_sample(pred, clean_pred, NUM_CLASSES).mean()),
                "flip": float((pred != clean_pred).float().mean()),
                "ssim": float(ssim3d(x, adv))}


def run_setting(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, block: int, steps: int,
                device: torch.device) -> bool:
    """Print one setting's figures; whether every target holds."""
    p = README
    engine = attacks.create("saa", model, steps=steps, block_size=(block,) * 3, precision="fp32", **p)
    tiles = x.numel() // block**3
    xi0 = torch.empty(1, 1, tiles, block, block, block, device=device)
    xi0.uniform_(1 - p["rho"], 1 + p["rho"], generator=make_generator(0, device))
    with torch.no_grad():
        clean_pred = model(x).argmax(1, keepdim=True)

    first_engine = attacks.create("saa", model, steps=1, block_size=(block,) * 3, precision="fp32",
                                  **p)(x, y, init_state=xi0).state
    start = time.perf_counter()
    result = engine(x, y, init_state=xi0)
    engine_s = time.perf_counter() - start
    start = time.perf_counter()
    with frozen_model(model):
        first_ref, adv_ref = reference_loop(model, x, y, xi0, block, steps, p["rho"], p["lambda_dice"],
                                            p["lambda_ssim"], p["beta"])
    ref_s = time.perf_counter() - start

    non_dc = torch.ones_like(xi0, dtype=torch.bool)
    non_dc[..., 0, 0, 0] = False
    same = (torch.sign(first_engine - xi0) == torch.sign(first_ref - xi0))[non_dc]
    agreement = float(same.float().mean())
    ours, theirs = outcome(model, x, result.adversarial, clean_pred), outcome(model, x, adv_ref, clean_pred)
    worst = max(abs(ours[k] - theirs[k]) for k in ours)
    ok = agreement >= SIGN_TARGET and worst <= OUTCOME_TARGET
    print(f"\nblock {block}³ ({tiles} blocks), ρ {p['rho']}, λ_dice {p['lambda_dice']}, SSIM λ {p['lambda_ssim']}, "
          f"β {p['beta']}, T = {steps} steps")
    print(f"  first update: sign agreement {100 * agreement:.3f} % ({int((~same).sum())} of {same.numel()} non-DC "
          f"entries differ; target ≥ {100 * SIGN_TARGET:.1f} %)")
    print(f"  {'':<22}{'Dice':>9}{'flip rate':>11}{'SSIM':>9}")
    print(f"  {'engine':<22}{ours['dice']:9.4f}{ours['flip']:11.4f}{ours['ssim']:9.4f}")
    print(f"  {'reference loop':<22}{theirs['dice']:9.4f}{theirs['flip']:11.4f}{theirs['ssim']:9.4f}")
    print(f"  {'|difference|':<22}{abs(ours['dice'] - theirs['dice']):9.4f}"
          f"{abs(ours['flip'] - theirs['flip']):11.4f}{abs(ours['ssim'] - theirs['ssim']):9.4f}"
          f"   (target ≤ {OUTCOME_TARGET})")
    print(f"  largest voxel difference of the two images: {float((result.adversarial - adv_ref).abs().max()):.4f}")
    print(f"  time of {steps} steps: engine {engine_s:.1f} s, reference loop {ref_s:.1f} s "
          f"(×{ref_s / engine_s:.2f})")
    if _native_bf16(device):
        bf16 = attacks.create("saa", model, steps=steps, block_size=(block,) * 3, precision="bf16", **p)
        low = outcome(model, x, bf16(x, y, init_state=xi0).adversarial, clean_pred)
        print(f"  {'engine in bf16':<22}{low['dice']:9.4f}{low['flip']:11.4f}{low['ssim']:9.4f}"
              f"   |difference| to the reference loop: Dice {abs(low['dice'] - theirs['dice']):.4f}, flip "
              f"{abs(low['flip'] - theirs['flip']):.4f}, SSIM {abs(low['ssim'] - theirs['ssim']):.4f} (outcome only, "
              f"not a target)")
    print(f"  {'PASS' if ok else 'FAIL'}")
    return ok


def _native_bf16(device: torch.device) -> bool:
    """Whether ``precision="auto"`` picks bf16 here (a CPU with AMX or AVX512-BF16, or a CUDA GPU with bf16)."""
    return resolve_precision("auto", device).name == "bf16"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="SA² steps T (seed README: 10)")
    parser.add_argument("--blocks", type=int, nargs="+", default=[16, 8], help="cubic block edges to run")
    parser.add_argument("--tile", type=int, default=96, help="tile edge in voxels (reference: 96)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"{machine_name(device, torch.get_num_threads())}, torch {torch.__version__}, {device}; tile {args.tile}³ of "
          "sample CT img0001")
    x, y = load_tile(args.tile, device)
    model = seed_unet(device)
    results = [run_setting(model, x, y, block, args.steps, device) for block in args.blocks]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
