"""fp32 against bf16 for the model passes, side by side in one run (a script, not a test).

For MONAI UNet and UNETR (the seed's sizes, 14 classes) on one 96³ tile:

1. forward + backward to the input (DiceCE, parameters frozen), fp32 and bf16 interleaved, medians;
2. a 10-step SA² with the seed README's setting (ρ 0.4, 16³ blocks, λ_dice 0.2, SSIM term with λ_ssim 0.75), from
   the same ξ (same seed), in fp32 and in bf16, the two stepping in turn: the median step time of each and their
   ratio (target on a CPU with native bf16: bf16/fp32 ≤ 0.65);
3. the outcome of both attacks, scored the same way (fp32 prediction of each adversarial tile): Dice of the clean
   vs the adversarial prediction, voxel flip rate and SSIM(clean, adversarial). Target: each within 0.005 of fp32;
4. the SA² step against its floor in bf16, inside one ``steps``-step bf16 attack: a bf16 forward + backward timed
   between every two steps (``bench/attack_cost.py``'s interleaving), median of the neighbouring ratios. Target:
   SA² step ≤ 1.15× the bf16 forward + backward;
5. what the step adds to the model, part by part, each timed in turn with a bf16 forward + backward (median of
   ``repeats`` rounds, as a fraction of it): the rendering (ξ·coefficients, inverse block DCT, merge) forward and
   backward, the SSIM term forward and backward, the history (class map and per-volume Dice) and the cast of the
   bf16 logits to float32 and back.

The exit status is 1 when a target is missed. On a CPU without AMX or AVX512-BF16 the script says so, shows that
``precision="auto"`` kept fp32 there, and stops (bf16 would only be emulated). The tile is a 96³ crop of the sample
CT (intensity window −175…250 HU → [0, 1]) when the sample data is present, else uniform noise; the networks have
seeded random weights, and the attack's labels are the clean prediction.

Usage::

    python bench/precision_cost.py --threads 2
    python bench/precision_cost.py --models unet --steps 5 --device cuda
    python bench/precision_cost.py --models unet --steps 4 --threads 1 --clock cpu   # quiet figures on a busy machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attack_cost import (
    CLOCKS,
    NUM_CLASSES,
    TILE,
    _sync,
    _timed,
    bench_step,
    build_model,
    machine_name,
    now,
    print_table,
    use_clock,
)

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks import frozen_model
from SpectrumAttackLib.attacks.base import forward_logits
from SpectrumAttackLib.attacks.losses import ReferenceSSIM, dice_ce_loss
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.precision import resolve_precision
from SpectrumAttackLib.runtime import resolve_device

#: The seed README's SA² example.
README_SAA = {"rho": 0.4, "block_size": (16, 16, 16), "lambda_dice": 0.2, "use_ssim_loss": True, "lambda_ssim": 0.75}
RATIO_TARGET = 0.65
AGREEMENT = 0.005
#: SA² step ÷ forward + backward, both in bf16.
FLOOR_TARGET = 1.15


def tile(device: torch.device) -> tuple[torch.Tensor, str]:
    """``[1, 1, 96, 96, 96]`` in [0, 1]: the centre of the sample CT when present, else seeded noise."""
    from SpectrumAttackLib.data.sample_data import sample_data_path

    path = sample_data_path() / "imagesTr" / "img0001.nii.gz"
    if path.is_file():
        import nibabel as nib

        volume = torch.as_tensor(nib.load(path).get_fdata(dtype="float32"))
        volume = ((volume + 175.0) / 425.0).clamp(0.0, 1.0)
        out = torch.zeros(TILE, TILE, TILE)
        starts = [max((n - TILE) // 2, 0) for n in volume.shape]
        crop = volume[tuple(slice(s, s + TILE) for s in starts)]
        out[tuple(slice(0, n) for n in crop.shape)] = crop
        return out[None, None].to(device), f"sample CT {path.name} (centre crop)"
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 1, TILE, TILE, TILE, generator=g).to(device), "uniform noise (no sample data)"


def forward_backward_times(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, repeats: int,
                           device: torch.device) -> dict[str, float]:
    """Median seconds of forward + backward to the input per precision, fp32 and bf16 interleaved."""
    loss_fn = dice_ce_loss()
    precisions = {name: resolve_precision(name, device) for name in ("fp32", "bf16")}

    def once(name: str) -> None:
        x = images.clone().requires_grad_(True)
        torch.autograd.grad(loss_fn(forward_logits(model, x, precisions[name]), labels), x)

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with frozen_model(model):
        for name in times:  # warm-up
            once(name)
        for _ in range(repeats):
            for name in times:
                times[name].append(_timed(lambda n=name: once(n), device))
    return {name: statistics.median(values) for name, values in times.items()}


def interleaved_attacks(model: torch.nn.Module, images: torch.Tensor, clean: torch.Tensor, steps: int,
                        device: torch.device) -> dict[str, dict[str, float | str]]:
    """SA² (README setting) in fp32 and in bf16, one step of each in turn; step times and outcomes per precision.

    Each step is a one-step attack call that continues from the previous call's ξ (``init_state``); the first call
    of both draws ξ from seed 0, so both start from the same ξ. SA²'s rendering does not depend on the step index,
    so the chain is exactly a ``steps``-step attack, and alternating the precisions step by step (in ABBA order)
    lets load changes on a shared machine hit both alike. Each call's time includes the call's own set-up
    (clean DCT, SSIM statistics, about 2–4 % of a UNet step), which makes the ratio slightly conservative.
    The outcome is scored the same way for both: an fp32 prediction of each final adversarial tile.
    """
    order = ("fp32", "bf16")
    attackers = {p: attacks.create("saa", model, steps=1, seed=0, precision=p, **README_SAA) for p in order}
    state: dict[str, torch.Tensor | None] = dict.fromkeys(order)
    times: dict[str, list[float]] = {p: [] for p in order}
    final = {}
    for step in range(steps):
        for p in order if step % 2 == 0 else order[::-1]:
            _sync(device)
            start = now()
            final[p] = attackers[p](images, clean, init_state=state[p])
            _sync(device)
            times[p].append(now() - start)
            state[p] = final[p].state
    out = {}
    fp32 = resolve_precision("fp32", device)
    for p in order:
        with torch.no_grad(), frozen_model(model):
            adv_pred = forward_logits(model, final[p].adversarial, fp32).argmax(1, keepdim=True)
            ssim = float(ReferenceSSIM(images)(final[p].adversarial))
        out[p] = {
            "step": statistics.median(times[p][1:]),  # the first call warms up
            "total": sum(times[p]),
            "dice": float(dice_per_sample(adv_pred, clean, NUM_CLASSES).mean()),
            "flip": float((adv_pred != clean).float().mean()),
            "ssim": ssim,
            "used": final[p].config["precision_used"],
        }
    return out


def part_times(model: torch.nn.Module, images: torch.Tensor, clean: torch.Tensor, repeats: int,
               device: torch.device) -> dict[str, float]:
    """Median seconds per part of an SA² step (README setting) besides the model, each part timed in turn with a
    bf16 forward + backward (``"fwd+bwd bf16"``) in every round."""
    from SpectrumAttackLib.attacks.losses import class_map
    from SpectrumAttackLib.attacks.spectral import spectral_context, spectral_image

    bf16 = resolve_precision("bf16", device)
    loss_fn = dice_ce_loss()
    context = spectral_context(images, README_SAA["block_size"], "all", 3)
    g = torch.Generator(device=device).manual_seed(0)
    rho = README_SAA["rho"]
    xi = torch.empty_like(context.coefs).uniform_(1 - rho, 1 + rho, generator=g)
    adversarial = spectral_image(context.coefs * xi, context, 3).detach()
    similarity = ReferenceSSIM(images)
    with torch.no_grad(), frozen_model(model):
        logits = forward_logits(model, adversarial, bf16)

    def forward_backward() -> None:
        x = images.clone().requires_grad_(True)
        torch.autograd.grad(loss_fn(forward_logits(model, x, bf16), clean), x)

    def render() -> None:
        factors = xi.clone().requires_grad_(True)
        torch.autograd.grad(spectral_image(context.coefs * factors, context, 3), factors, adversarial)

    def ssim() -> None:
        y = adversarial.clone().requires_grad_(True)
        torch.autograd.grad(1 - similarity(y), y)

    def history() -> None:
        float(dice_per_sample(class_map(logits), clean, NUM_CLASSES).mean())

    def cast() -> None:
        low = logits.to(torch.bfloat16).requires_grad_(True)
        torch.autograd.grad(low.float(), low, logits)

    parts = {"fwd+bwd bf16": forward_backward, "render fwd+bwd": render, "SSIM fwd+bwd": ssim,
             "history (class map, Dice)": history, "logits cast bf16→fp32 fwd+bwd": cast}
    times: dict[str, list[float]] = {name: [] for name in parts}
    with frozen_model(model):
        for fn in parts.values():  # warm-up
            fn()
        for _ in range(repeats):
            for name, fn in parts.items():
                times[name].append(_timed(fn, device))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["unet", "unetr"], choices=("unet", "unetr"))
    parser.add_argument("--steps", type=int, default=10, help="SA² steps per attack (≥ 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward + backward pairs (median)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall clock, or the process's CPU time (quiet-machine figures with --threads 1)")
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error(f"--steps must be at least 3, got {args.steps}.")
    torch.set_num_threads(args.threads)
    use_clock(args.clock)
    device = resolve_device(args.device)
    auto = resolve_precision("auto", device)
    print(f"torch {torch.__version__}, {machine_name(device, args.threads)}, clock {args.clock}")
    if hasattr(os, "getloadavg"):
        print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} (1, 5, 15 min)")
    print(f"precision='auto' resolves to {auto.name} here ({auto.reason})")
    if auto.name != "bf16":
        print("This device has no native bf16: auto keeps fp32, and bf16 would only be emulated, so there is "
              "nothing to compare. Run on a CPU with AMX or AVX512-BF16, or on a CUDA GPU with bf16.")
        return 0
    images, source = tile(device)
    print(f"tile {TILE}³: {source}; SA² {args.steps} steps, ρ {README_SAA['rho']}, 16³ blocks, λ_dice "
          f"{README_SAA['lambda_dice']}, SSIM λ {README_SAA['lambda_ssim']}, seed 0 (same ξ) for both precisions\n")
    timing_rows, outcome_rows, floor_rows, part_rows, missed = [], [], [], [], []
    for name in args.models:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(name).to(device).eval()
        with torch.no_grad():
            clean = forward_logits(model, images, resolve_precision("fp32", device)).argmax(1, keepdim=True)
        fb = forward_backward_times(model, images, clean, args.repeats, device)
        runs = interleaved_attacks(model, images, clean, args.steps, device)
        if runs["bf16"]["used"] != "bf16" or runs["fp32"]["used"] != "fp32":
            raise RuntimeError(f"precisions used: {runs['fp32']['used']}, {runs['bf16']['used']}")
        ratio = runs["bf16"]["step"] / runs["fp32"]["step"]
        timing_rows.append((name, f"{fb['fp32']:.3f}", f"{fb['bf16']:.3f}", f"{fb['bf16'] / fb['fp32']:.3f}",
                            f"{runs['fp32']['step']:.3f}", f"{runs['bf16']['step']:.3f}", f"{ratio:.3f}",
                            f"{runs['fp32']['total']:.1f}", f"{runs['bf16']['total']:.1f}",
                            "ok" if ratio <= RATIO_TARGET else "MISSED"))
        if ratio > RATIO_TARGET:
            missed.append(f"{name}: SA² step ratio {ratio:.3f} > {RATIO_TARGET}")
        deltas = {k: abs(runs["bf16"][k] - runs["fp32"][k]) for k in ("dice", "flip", "ssim")}
        for key, delta in deltas.items():
            if delta > AGREEMENT:
                missed.append(f"{name}: {key} differs by {delta:.4f} > {AGREEMENT}")
        outcome_rows.append((name, *(f"{runs[p][k]:.4f}" for k in ("dice", "flip", "ssim") for p in ("fp32", "bf16")),
                             f"{max(deltas.values()):.4f}",
                             "ok" if max(deltas.values()) <= AGREEMENT else "MISSED"))
        ((_, base, step, floor, _),) = bench_step(model, args.steps, device, "saa", precision="bf16",
                                               settings={"README": README_SAA}, images=images, labels=clean)
        floor_rows.append((name, f"{base:.3f}", f"{step:.3f}", f"{floor:.3f}",
                           "ok" if floor <= FLOOR_TARGET else "MISSED"))
        if floor > FLOOR_TARGET:
            missed.append(f"{name}: SA² step / bf16 fwd+bwd {floor:.3f} > {FLOOR_TARGET}")
        parts = part_times(model, images, clean, args.repeats, device)
        base = parts.pop("fwd+bwd bf16")
        part_rows += [(name, part, f"{1000 * seconds:.1f}", f"{seconds / base:.3f}") for part, seconds in parts.items()]
        part_rows.append((name, "fwd+bwd bf16 (the floor)", f"{1000 * base:.1f}", "1.000"))
        del model
    print(f"Time in seconds (fwd+bwd: median of {args.repeats}, interleaved; SA² step: median over steps 2…"
          f"{args.steps}, the two precisions stepping in turn; target bf16/fp32 step ≤ {RATIO_TARGET})")
    print_table(("model", "fwd+bwd fp32", "fwd+bwd bf16", "ratio", "SA² step fp32", "SA² step bf16", "ratio",
                 "attack fp32", "attack bf16", "target"), timing_rows)
    print(f"\nOutcome of the {args.steps}-step SA² (clean vs adversarial prediction, both predicted in fp32; "
          f"target |bf16 − fp32| ≤ {AGREEMENT})")
    print_table(("model", "Dice fp32", "Dice bf16", "flip fp32", "flip bf16", "SSIM fp32", "SSIM bf16", "max |Δ|",
                 "target"), outcome_rows)
    print(f"\nSA² step vs its floor, both bf16, inside one {args.steps + 2}-step attack (median of the neighbouring "
          f"step / fwd+bwd ratios; target ≤ {FLOOR_TARGET})")
    print_table(("model", "fwd+bwd bf16 s", "SA² step bf16 s", "ratio", "target"), floor_rows)
    print(f"\nWhat an SA² step adds to the model, per part (median of {args.repeats} rounds, each part next to a bf16 "
          "fwd+bwd; fraction of it)")
    print_table(("model", "part", "ms", "÷ fwd+bwd bf16"), part_rows)
    if missed:
        print("\nMISSED: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
