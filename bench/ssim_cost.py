"""The audit's 3-D SSIM: skimage's ``structural_similarity`` against the engine's torch window sums (a script).

Both compute skimage's definition (7×7×7 uniform window, sample covariance, data range 1) on the same volume
pairs; measured side by side, interleaved (skimage, ours, skimage, ...), medians printed with the largest absolute
difference of the two values (target ≤ 1e-6) and the speed-up.

Usage::

    python bench/ssim_cost.py --threads 2                  # 96³ and 256³
    python bench/ssim_cost.py --sizes 96 --repeats 2       # quick
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpectrumAttackLib.metrics.volume_ssim import window_sum_ssim

TARGET = 1e-6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256], help="cubic volume edges")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from skimage.metrics import structural_similarity

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, CPU")
    ok = True
    for size in args.sizes:
        rng = np.random.default_rng(size)
        clean = rng.random((size,) * 3).astype(np.float32)
        adversarial = np.clip(clean + 0.02 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
        times: dict[str, list[float]] = {"skimage": [], "ours": []}
        values = {}
        for _ in range(args.repeats):
            start = time.perf_counter()
            values["skimage"] = structural_similarity(clean.astype(np.float64), adversarial.astype(np.float64),
                                                      data_range=1.0)
            times["skimage"].append(time.perf_counter() - start)
            start = time.perf_counter()
            values["ours"] = window_sum_ssim(torch.from_numpy(clean), torch.from_numpy(adversarial))
            times["ours"].append(time.perf_counter() - start)
        difference = abs(values["skimage"] - values["ours"])
        ok &= difference <= TARGET
        sk, ours = statistics.median(times["skimage"]), statistics.median(times["ours"])
        print(f"{size}³: skimage {sk:.2f} s, ours {ours:.2f} s (×{sk / ours:.1f}); |difference| {difference:.1e} "
              f"(target ≤ {TARGET:g}: {'met' if difference <= TARGET else 'NOT met'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
