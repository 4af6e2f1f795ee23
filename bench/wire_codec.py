"""Which codec carries volumes between ``spectrum-attack serve`` and its client: blosc2 against npz, measured
side by side on the same CT-like volume (a script, not a test).

The volume is a synthetic 512×512×300 int16 CT (air at −1000 HU, a body ellipse with organs and bone, scanner-like
noise of 15 HU), the size of a full abdominal scan. For each codec the script times encode and decode (median of
``--repeats``), prints the body size and the compression ratio, and checks that the decoded volume is byte-exact.
``--quick`` uses 256×256×100.

Usage::

    python bench/wire_codec.py --repeats 3
    python bench/wire_codec.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpectrumAttackLib.remote.protocol import CODECS, decode_volume, encode_volume


def machine() -> str:
    """CPU model and core count, for the printed figures."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def synthetic_ct(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """``[I, J, K]`` int16 HU: air, a body ellipse (−40 HU), a liver-like blob (120 HU), a spine (700 HU), noise."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    body = (i / 0.85) ** 2 + (j / 0.65) ** 2 < 1
    liver = ((i + 0.3) / 0.35) ** 2 + ((j + 0.1) / 0.3) ** 2 < 1
    spine = (i ** 2 + (j - 0.45) ** 2) < 0.01
    slice_hu = np.where(body, -40.0, -1000.0)
    slice_hu[liver] = 120.0
    slice_hu[spine] = 700.0
    volume = np.empty(shape, np.int16)
    for k in range(shape[2]):
        volume[:, :, k] = np.round(slice_hu + rng.normal(0, 15, shape[:2])).astype(np.int16)
    return volume


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 256×256×100 volume instead of 512×512×300")
    args = parser.parse_args(argv)
    shape = (256, 256, 100) if args.quick else (512, 512, 300)
    volume = synthetic_ct(shape)
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    raw = volume.nbytes
    print(f"machine: {machine()}")
    print(f"volume: int16 {list(shape)}, {raw / 2**20:.1f} MiB raw; median of {args.repeats} runs")
    print(f"{'codec':8} {'MiB':>8} {'ratio':>6} {'encode s':>9} {'decode s':>9} {'MB/s enc':>9} {'MB/s dec':>9} exact")
    figures = {}
    for codec in CODECS:
        encode_times, decode_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            body, meta = encode_volume(volume, affine, codec=codec)
            encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            decoded, decoded_affine = decode_volume(body, meta)
            decode_times.append(time.perf_counter() - start)
        exact = (decoded.dtype == volume.dtype and decoded.shape == volume.shape
                 and decoded.tobytes() == volume.tobytes() and np.array_equal(decoded_affine, affine))
        enc, dec = statistics.median(encode_times), statistics.median(decode_times)
        figures[codec] = (len(body), enc, dec)
        print(f"{codec:8} {len(body) / 2**20:8.1f} {raw / len(body):6.2f} {enc:9.3f} {dec:9.3f} "
              f"{raw / enc / 1e6:9.0f} {raw / dec / 1e6:9.0f} {exact}")
        if not exact:
            print(f"error: {codec} did not round-trip byte-exact", file=sys.stderr)
            return 1
    (b_size, b_enc, b_dec), (n_size, n_enc, n_dec) = figures["blosc2"], figures["npz"]
    print(f"blosc2 vs npz: encode {n_enc / b_enc:.1f}x faster, decode {n_dec / b_dec:.1f}x faster, "
          f"size {b_size / n_size:.2f}x of npz's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
