"""The audit's 3-D SSIM: skimage's ``structural_similarity`` against the engine's torch window sums (a script).

Both compute skimage's definition (7×7×7 uniform window, sample covariance, data range 1) on the same volume
pairs; measured side by side, interleaved (skimage, ours, skimage, ...), medians printed with the absolute
difference of the two values (target ≤ 1e-6) and the speed-ups: ``ours`` is one call of
:func:`~SpectrumAttackLib.metrics.volume_ssim.volume_ssim` (the clean volume's statistics included), ``kept`` one
more adversarial volume for a :class:`~SpectrumAttackLib.metrics.volume_ssim.VolumeSSIM` whose clean statistics
are kept (what an audit pays per cell after the first, and a search per run).

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

from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM, volume_ssim

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
        times: dict[str, list[float]] = {"skimage": [], "ours": [], "kept": []}
        values = {}
        kept = VolumeSSIM(torch.from_numpy(clean))
        for _ in range(args.repeats):
            start = time.perf_counter()
            values["skimage"] = structural_similarity(clean.astype(np.float64), adversarial.astype(np.float64),
                                                      data_range=1.0)
            times["skimage"].append(time.perf_counter() - start)
            start = time.perf_counter()
            values["ours"] = volume_ssim(torch.from_numpy(clean), torch.from_numpy(adversarial))
            times["ours"].append(time.perf_counter() - start)
            start = time.perf_counter()
            values["kept"] = kept(torch.from_numpy(adversarial))
            times["kept"].append(time.perf_counter() - start)
        difference = max(abs(values["skimage"] - values[key]) for key in ("ours", "kept"))
        ok &= difference <= TARGET
        sk, ours, again = (statistics.median(times[key]) for key in ("skimage", "ours", "kept"))
        print(f"{size}³: skimage {sk:.2f} s, ours {ours:.2f} s (×{sk / ours:.1f}), with the clean statistics kept "
              f"{again:.2f} s (×{sk / again:.1f}); |difference| {difference:.1e} "
              f"(target ≤ {TARGET:g}: {'met' if difference <= TARGET else 'NOT met'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
