"""Cost of the attack engine, measured side by side in one run (a script, not a test).

1. Block DCT + inverse DCT of a 96³ tile split into 8³, 16³ and 32³ blocks: SpectrumAttackLib's matrix DCT
   against torch-dct's FFT-based ``dct_3d`` / ``idct_3d`` (``norm="ortho"``) on the same blocks.
   Target: ours ≥ 5× faster.
2. One SA² step (render, forward, objective, backward to ξ, update, history) against the model's own forward +
   backward to the input (DiceCE, parameters frozen) on the same 96³ tile, for MONAI UNet and UNETR with the seed's
   settings (14 classes). Target: SA² step ≤ 1.05× forward + backward. Both in fp32 (the floor);
   bench/precision_cost.py compares fp32 with bf16.
3. One APGD step (SEA's losses, progressive radius: forward, loss, backward, the step-size bookkeeping, momentum,
   best-iterate tracking, history) against the same forward + backward. Target: APGD step ≤ 1.05×.

Measurements are interleaved step by step (baseline, SA² step, baseline, ...) and medians are reported (the ratio is
the median of the ratios of neighbouring pairs), so load changes on a shared machine hit both sides alike. The
machine (CPU model, native bf16 features, threads; or the GPU) is printed first. ``--clock cpu`` times the process's
CPU time instead of the wall clock: with ``--threads 1`` that is what a quiet machine would show even while other
processes load it (with more threads it also counts threads waiting for each other, so keep ``wall`` there).

Usage::

    python bench/attack_cost.py --repeats 3 --threads 2
    python bench/attack_cost.py --models unet --blocks 8 --attacks apgd --repeats 3 --threads 1 --clock cpu
    python bench/attack_cost.py --models unet --blocks 8 16 --device cuda
    python bench/attack_cost.py --models unet --blocks 8 --attacks apgd --repeats 3   # APGD only, quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks import frozen_model
from SpectrumAttackLib.attacks.base import forward_logits
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.precision import cpu_bf16_features, resolve_precision
from SpectrumAttackLib.runtime import resolve_device
from SpectrumAttackLib.transforms import dct_nd, idct_nd, split_blocks_3d

#: APGD settings timed per model: SEA's three losses with its progressive radius, at ε 8.
APGD_SETTINGS = {f"SEA {loss}": {"eps": 8.0, "loss": loss, "progressive_radius": True}
                 for loss in ("masked-ce", "balanced-masked-ce", "js")}

TILE = 96
NUM_CLASSES = 14
DCT_TARGET = 5.0
STEP_TARGET = 1.05

#: SA² settings timed per model: the seed CLI defaults and the seed README command.
SAA_SETTINGS = {
    "cli defaults (8³)": {"block_size": (8, 8, 8), "rho": 0.2, "lambda_dice": 0.01},
    "README (16³, SSIM)": {"block_size": (16, 16, 16), "rho": 0.4, "lambda_dice": 0.2, "use_ssim_loss": True,
                           "lambda_ssim": 0.75},
}


#: attack name → the settings timed for it.
ATTACK_SETTINGS = {"saa": SAA_SETTINGS, "apgd": APGD_SETTINGS}


#: the clock of every measurement: ``time.perf_counter`` (wall) or ``time.process_time`` (``--clock cpu``).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def use_clock(name: str) -> None:
    """Time every later measurement with clock ``name`` (``"wall"`` or ``"cpu"``)."""
    global _clock
    _clock = CLOCKS[name]


def now() -> float:
    """The current reading of the selected clock, in seconds."""
    return _clock()


def machine_name(device: torch.device, threads: int) -> str:
    """The CPU model with its native-bf16 features and the thread count (or the GPU) this runs on, in words."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    features = ", ".join(cpu_bf16_features()) or "no AMX / AVX512-BF16"
    return f"{cpu} [{features}], {threads} thread(s)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = now()
    fn()
    _sync(device)
    return now() - start


def bench_dct(blocks: list[int], repeats: int, device: torch.device) -> list[tuple[str, ...]]:
    """Rows ``(block, N, ours ms, torch-dct ms, ratio)`` for DCT + IDCT of one 96³ tile."""
    try:
        import torch_dct
    except ImportError:
        torch_dct = None
        print("torch-dct is not installed (pip install torch-dct): its column is skipped.")
    tile = torch.rand(1, 1, TILE, TILE, TILE, device=device)
    rows = []
    for b in blocks:
        split = split_blocks_3d(tile, (b, b, b)).contiguous()
        ours = lambda s=split: idct_nd(dct_nd(s, 3), 3)  # noqa: E731
        theirs = (lambda s=split: torch_dct.idct_3d(torch_dct.dct_3d(s, norm="ortho"), norm="ortho")) \
            if torch_dct else None
        if theirs is not None:
            error = float((ours() - theirs()).abs().max())
            if error > 1e-4:
                raise RuntimeError(f"DCT round trips disagree by {error:g} on {b}³ blocks.")
        t_ours, t_theirs = [], []
        for _ in range(repeats + 1):  # the first round warms up both and is dropped
            t_ours.append(_timed(ours, device))
            if theirs is not None:
                t_theirs.append(_timed(theirs, device))
        ms_ours = 1000 * statistics.median(t_ours[1:])
        if theirs is None:
            rows.append((f"{b}³", str(split.shape[2]), f"{ms_ours:.2f}", "skipped", "-"))
            continue
        ms_theirs = 1000 * statistics.median(t_theirs[1:])
        rows.append((f"{b}³", str(split.shape[2]), f"{ms_ours:.2f}", f"{ms_theirs:.2f}", f"{ms_theirs / ms_ours:.1f}×"))
    return rows


def build_model(name: str) -> torch.nn.Module:
    """The seed's UNet or UNETR (seed-algorithms §8), 1 input channel, 14 classes."""
    from monai.networks.nets import UNETR, UNet

    if name == "unet":
        return UNet(spatial_dims=3, in_channels=1, out_channels=NUM_CLASSES, channels=(32, 64, 128, 256, 512),
                    strides=(2, 2, 2, 2), num_res_units=2)
    if name == "unetr":
        return UNETR(in_channels=1, out_channels=NUM_CLASSES, img_size=(TILE, TILE, TILE), feature_size=16,
                     hidden_size=768, mlp_dim=3072, num_heads=12, proj_type="perceptron", norm_name="instance",
                     conv_block=True, res_block=True, dropout_rate=0.0, spatial_dims=3)
    raise ValueError(f"model must be one of 'unet', 'unetr', got {name!r}.")


class _Interleaved:
    """Progress callback that times one baseline forward + backward between every two attack steps.

    The attack steps run between the callbacks, so step ``i + 1`` is timed from the end of callback ``i`` to the
    start of callback ``i + 1``, right next to baseline ``i``: both see the same machine load.
    """

    def __init__(self, baseline: Callable[[], None], device: torch.device) -> None:
        self.baseline = baseline
        self.device = device
        self.enter: list[float] = []
        self.leave: list[float] = []
        self.base: list[float] = []

    def __call__(self, _progress: object) -> None:
        _sync(self.device)
        self.enter.append(now())
        self.base.append(_timed(self.baseline, self.device))
        self.leave.append(now())

    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.leave[:-1], self.enter[1:], strict=True)]


def bench_step(model: torch.nn.Module, repeats: int, device: torch.device, attack_name: str = "saa", *,
               precision: str = "fp32", settings: dict[str, dict] | None = None, images: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> list[tuple[str, float, float, float, float]]:
    """``(setting, forward+backward s, attack step s, median ratio, median difference s)`` on one 96³ tile,
    interleaved step by step (ratio and difference of neighbouring step / baseline pairs).

    The baseline is the model's forward and backward to the input through
    :func:`~SpectrumAttackLib.attacks.base.forward_logits` in ``precision`` (DiceCE, parameters frozen), the attack
    runs in the same precision. ``settings`` default to :data:`ATTACK_SETTINGS` of the attack; ``images`` and
    ``labels`` to seeded noise. With ``model`` a 1×1×1 convolution the difference step − forward+backward is the
    attack's own cost per step (render, backward through the DCT, SSIM, update, history), nearly free of the model's.
    """
    g = torch.Generator().manual_seed(0)
    if images is None or labels is None:
        images = torch.rand(1, 1, TILE, TILE, TILE, generator=g).to(device)
        labels = torch.randint(0, NUM_CLASSES, (1, 1, TILE, TILE, TILE), generator=g).to(device)
    loss_fn = dice_ce_loss()
    resolved = resolve_precision(precision, device)

    def forward_backward() -> None:
        with frozen_model(model):
            x = images.clone().requires_grad_(True)
            torch.autograd.grad(loss_fn(forward_logits(model, x, resolved), labels), x)

    results = []
    for setting, params in (settings or ATTACK_SETTINGS[attack_name]).items():
        attack = attacks.create(attack_name, model, steps=repeats + 2, seed=0, precision=precision, **params)
        forward_backward()  # warm-up
        timer = _Interleaved(forward_backward, device)
        attack(images, labels, progress=timer)
        steps = timer.steps()[1:]  # the first step after the first baseline is a warm-up for the attack
        base = timer.base[1:-1]
        ratios = [s / b for s, b in zip(steps, base, strict=True)]
        differences = [s - b for s, b in zip(steps, base, strict=True)]
        results.append((setting, statistics.median(base), statistics.median(steps), statistics.median(ratios),
                        statistics.median(differences)))
    return results


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per measurement (median)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--blocks", type=int, nargs="+", default=[8, 16, 32], help="cubic DCT block edges")
    parser.add_argument("--models", nargs="*", default=["unet", "unetr"], help="unet and/or unetr; none to skip")
    parser.add_argument("--attacks", nargs="+", default=["saa", "apgd"], choices=list(ATTACK_SETTINGS),
                        help="attacks whose step is timed")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall clock, or the process's CPU time (quiet-machine figures with --threads 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    use_clock(args.clock)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {machine_name(device, args.threads)}, clock {args.clock}, tile {TILE}³, "
          f"repeats {args.repeats}")
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} (1, 5, 15 min)\n"
          if hasattr(os, "getloadavg") else "")

    print(f"Block DCT + IDCT of one {TILE}³ tile (target: torch-dct / ours ≥ {DCT_TARGET:g}×)")
    dct_rows = bench_dct(args.blocks, args.repeats, device)
    print_table(("block", "N", "ours ms", "torch-dct ms", "speed-up"), dct_rows)

    for attack_name in args.attacks:
        label = {"saa": "SA²", "apgd": "APGD"}[attack_name]
        overhead = {setting: difference for setting, _, _, _, difference in
                    bench_step(torch.nn.Conv3d(1, NUM_CLASSES, 1).to(device), max(args.repeats, 5), device,
                               attack_name)}
        print(f"\n{label} cost per step besides the model (1×1×1-conv model, {TILE}³, {NUM_CLASSES} classes; median "
              "of the neighbouring step − fwd+bwd differences): "
              + ", ".join(f"{k}: {1000 * v:.0f} ms" for k, v in overhead.items()))
        step_rows = []
        for model_name in args.models:
            model = build_model(model_name).to(device)
            for setting, base, step, ratio, _ in bench_step(model, args.repeats, device, attack_name):
                step_rows.append((model_name, setting, f"{base:.3f}", f"{step:.3f}", f"{ratio:.3f}",
                                  f"{(base + overhead[setting]) / base:.3f}",
                                  "ok" if (base + overhead[setting]) / base <= STEP_TARGET else "MISSED"))
            del model
        if step_rows:
            print(f"\n{label} step vs forward + backward to the input, one {TILE}³ tile, {NUM_CLASSES} classes "
                  f"(target ≤ {STEP_TARGET:g}×)")
            print("(measured: median ratio of neighbouring step/baseline pairs, ±5 % on a loaded machine; from "
                  f"overhead:\n 1 + {label} cost / fwd+bwd, the steadier estimate, which the target column checks)")
            print_table(("model", f"{label} setting", "fwd+bwd s", f"{label} step s", "measured", "from overhead",
                         "target"), step_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
