"""Peak memory of one SA² step through the Slicer CLI script on a full-size CT (a script, not a test).

The case of issue 16 (D13): a 512×512×200 CT at 0.8×0.8×1.5 mm (int16 HU, NIfTI, as scanners export it), one SA²
step (``--steps 1``) with the bundled model ``unet-btcv-3mm`` on the CPU, every output of the script written
(adversarial volume, perturbation, clean and adversarial labels, metrics). The script runs in a child process and
its peak resident set size is read from the operating system (``wait4``'s ``ru_maxrss``), so everything the run
holds counts: Python, torch, the volumes, the resampling, the writers. Each precision asked for (``auto`` and
``fp32`` by default) is run in turn, in the same invocation, and printed with the target's ratio
(peak / :data:`TARGET_GIB`). The exit status is 1 when a peak is over the target.

The CT is synthetic (air, an elliptic body of soft tissue, a liver-like and a spine-like region, noise), written
once into a temporary folder; the peak depends on the grid and dtype, not on the anatomy.

Usage::

    python bench/memory_peak.py              # the full case, auto and fp32
    python bench/memory_peak.py --quick      # 256×256×100 at 1.6×1.6×3 mm: a smoke run (no target)
    python bench/memory_peak.py --precisions fp32 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI_SCRIPT = ROOT / "SpectrumAttackCLI" / "SpectrumAttackCLI.py"
#: the target of issue 16 for the full case (GiB).
TARGET_GIB = 1.8
FULL = ((512, 512, 200), (0.8, 0.8, 1.5))
QUICK = ((256, 256, 100), (1.6, 1.6, 3.0))


def write_ct(path: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0) -> Path:
    """A synthetic CT in HU (int16) with an LPS-like diagonal affine of ``spacing`` mm."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.linspace(-1, 1, shape[0], dtype=np.float32), np.linspace(-1, 1, shape[1],
                                                                                   dtype=np.float32), indexing="ij")
    body = (i / 0.8) ** 2 + (j / 0.6) ** 2 < 1
    liver = ((i + 0.3) / 0.3) ** 2 + ((j + 0.1) / 0.25) ** 2 < 1
    spine = (i / 0.1) ** 2 + ((j - 0.45) / 0.1) ** 2 < 1
    image = np.empty(shape, dtype=np.int16)
    for k in range(shape[2]):
        section = np.full(shape[:2], -1000.0, dtype=np.float32)
        section[body] = 40.0
        section[liver] = 60.0 + 10.0 * np.sin(k / 10.0)
        section[spine] = 700.0
        section += rng.normal(0.0, 15.0, shape[:2]).astype(np.float32)
        image[:, :, k] = np.clip(section, -1024, 3071).astype(np.int16)
    affine = np.diag([*spacing, 1.0])
    nib.save(nib.Nifti1Image(image, affine), path)
    return path


def peak_of_child(command: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Run ``command``; return ``(exit code, peak RSS in GiB, seconds, last stderr line)``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    err = process.stderr.read().strip().splitlines() if process.stderr else []
    process.stderr.close()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss * scale / 2**30, seconds, (err[-1] if err else "")


def machine() -> str:
    """The machine in one line: CPU, cores, memory, load, Python, torch."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        memory = f", {int(total.split()[1]) / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} logical cores{memory}{load}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 256×256×100 CT at 1.6×1.6×3 mm (smoke run)")
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32"], help="precisions to run in turn")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the child (default 2)")
    parser.add_argument("--model", default="unet-btcv-3mm", help="model of the Slicer CLI script")
    args = parser.parse_args(argv)

    shape, spacing = QUICK if args.quick else FULL
    print(f"machine: {machine()}")
    print(f"case: {shape[0]}×{shape[1]}×{shape[2]} int16 CT at {spacing[0]}×{spacing[1]}×{spacing[2]} mm, model "
          f"{args.model}, one SA² step (--steps 1) on the CPU, every output written; {args.threads} torch threads")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    over = False
    with tempfile.TemporaryDirectory(prefix="memory-peak-") as folder:
        ct = write_ct(Path(folder) / "ct.nii.gz", shape, spacing)
        print(f"{'precision':<10} {'peak GiB':>9} {'/ target':>9} {'seconds':>8}")
        for precision in args.precisions:
            out = Path(folder) / precision
            out.mkdir()
            command = [sys.executable, str(CLI_SCRIPT), "--inputVolume", str(ct),
                       "--outputVolume", str(out / "adversarial.nii.gz"), "--perturbation", str(out / "delta.nii.gz"),
                       "--cleanLabel", str(out / "clean.nii.gz"), "--adversarialLabel", str(out / "adv.nii.gz"),
                       "--metricsFile", str(out / "metrics.json"), "--model", args.model, "--attack", "saa",
                       "--steps", "1", "--device", "cpu", "--precision", precision]
            code, peak, seconds, last = peak_of_child(command, env)
            if code != 0:
                print(f"{precision:<10} failed with exit code {code}: {last}")
                return 2
            ratio = peak / TARGET_GIB
            over = over or (not args.quick and ratio > 1)
            print(f"{precision:<10} {peak:>9.2f} {ratio:>9.2f} {seconds:>8.1f}")
    if not args.quick:
        print(f"target: peak ≤ {TARGET_GIB} GiB for every precision: {'MISSED' if over else 'met'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
