"""Load test of ``spectrum-attack serve`` on loopback (a script, not a test; bounded in jobs and time).

Starts a server on a free 127.0.0.1 port (temporary data folder, a tiny UNet in a temporary catalogue, one token
per client), then N clients at once each submit small attack jobs (a 24×20×16 CT phantom, PGD, fp32) one after
the other and follow them by polling ``GET /v1/jobs/{id}`` every 50 ms. Reports:

- throughput: finished jobs per minute over the whole run (one worker runs them one at a time);
- job latency: submit → results fetched, p50 / p95;
- status-call latency while jobs run (the API's responsiveness while the worker computes), p50 / p95 / max;
- integrity: every job's four volumes and metrics equal those of a reference job run alone first (same seed,
  fp32), and each client saw only its own jobs.

Usage::

    python bench/server_load.py --clients 4 --jobs 3
    python bench/server_load.py --quick
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wire_codec import machine  # noqa: E402 - this folder (the script's own) is on sys.path

from SpectrumAttackLib.remote import RemoteSession  # noqa: E402 - after the path

SHAPE = (24, 20, 16)
JOB = {"model": "tiny-unet", "attack": "pgd", "params": {"steps": 5, "eps": 8}, "precision": "fp32", "seed": 0}
VOLUMES = ("adversarial", "perturbation", "seg_clean", "seg_adv")


def phantom() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    hu = np.where(i ** 2 / 0.8 + j ** 2 / 0.7 < 1, -40.0, -1000.0) + rng.normal(0, 20, SHAPE)
    hu[(i + 0.2) ** 2 + j ** 2 + k ** 2 < 0.25] = 120.0
    return hu.astype(np.int16), np.diag([1.5, 1.5, 2.0, 1.0])


def write_catalogue(folder: Path) -> None:
    import json

    import torch

    from SpectrumAttackLib.models import build_model, save_checkpoint

    arguments = {"channels": [4, 8], "strides": [2], "num_res_units": 0}
    torch.manual_seed(0)
    (folder / "weights").mkdir(parents=True)
    save_checkpoint(folder / "weights" / "tiny.pt", build_model("unet", 3, **arguments))
    entry = {"name": "tiny-unet", "architecture": "unet", "arguments": arguments, "num_classes": 3,
             "classes": [{"id": i, "name": n, "rgb": [0, 0, 0]} for i, n in enumerate(("background", "a", "b"))],
             "preprocessing": {"orientation": "RAS", "spacing_mm": [1.5, 1.5, 2.0], "a_min": -175.0, "a_max": 250.0,
                               "b_min": 0.0, "b_max": 1.0, "roi": [16, 16, 16]},
             "weights": "weights/tiny.pt", "sha256": "", "provenance": "random (benchmark)", "description": "bench"}
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_client(url: str, token: str, jobs: int, reference: dict, deadline: float, out: dict) -> None:
    session = RemoteSession(url, token, poll_s=0.05)
    hu, affine = phantom()
    status_times, job_times, intact, ids = [], [], 0, []
    for _ in range(jobs):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        job_id = session.start_attack((hu, affine), model=JOB["model"], attack=JOB["attack"], params=JOB["params"],
                                      precision=JOB["precision"], seed=JOB["seed"])
        ids.append(job_id)
        while True:
            t0 = time.perf_counter()
            record = session.status(job_id)
            status_times.append(time.perf_counter() - t0)
            if session.finished(record) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        own = {j["id"] for j in session.jobs()}
        result = session.attack_result(job_id)
        job_times.append(time.perf_counter() - start)
        same = all(np.array_equal(getattr(result, v), reference[v]) for v in VOLUMES)
        same = same and result.metrics["adversarial"] == reference["metrics"]["adversarial"]
        intact += int(same and own <= set(ids))
    out.update(status=status_times, jobs=job_times, intact=intact, submitted=len(ids))
    session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=3, help="jobs per client")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole load phase")
    parser.add_argument("--quick", action="store_true", help="2 clients × 2 jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.jobs = 2, 2
    with tempfile.TemporaryDirectory(prefix="spectrumattack-load-") as folder:
        root = Path(folder)
        write_catalogue(root / "resources")
        tokens = [secrets.token_urlsafe(24) for _ in range(args.clients)]
        (root / "tokens.txt").write_text("".join(f"client{i} {t}\n" for i, t in enumerate(tokens)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SPECTRUMATTACK_RESOURCES": str(root / "resources")}
        log = (root / "server.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "SpectrumAttackLib.cli.main", "serve", "--port", str(port), "--token-file",
             str(root / "tokens.txt"), "--data", str(root / "data"), "--max-jobs", str(args.clients + 1)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            hu, affine = phantom()
            warm = RemoteSession(url, tokens[0])
            info = warm.capabilities()
            start = time.perf_counter()
            reference_result = warm.attack((hu, affine), model=JOB["model"], attack=JOB["attack"],
                                           params=JOB["params"], precision=JOB["precision"], seed=JOB["seed"])
            alone = time.perf_counter() - start
            reference = {v: getattr(reference_result, v) for v in VOLUMES}
            reference["metrics"] = reference_result.metrics
            print(f"machine: {machine()}; server device {info['device']}, engine {info['engine']}")
            print(f"load: {args.clients} clients × {args.jobs} jobs (PGD 5 steps, fp32, {list(SHAPE)} int16 "
                  f"phantom, tiny UNet); one job alone: {alone:.2f} s")
            outs = [{} for _ in tokens]
            deadline = time.monotonic() + args.timeout
            threads = [threading.Thread(target=run_client, args=(url, t, args.jobs, reference, deadline, o))
                       for t, o in zip(tokens, outs, strict=True)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - start
        finally:
            server.send_signal(2)
            server.wait(30)
            log.close()
    status = [s for o in outs for s in o.get("status", [])]
    jobs = [s for o in outs for s in o.get("jobs", [])]
    intact = sum(o.get("intact", 0) for o in outs)
    submitted = sum(o.get("submitted", 0) for o in outs)
    print(f"finished {len(jobs)} of {args.clients * args.jobs} jobs in {wall:.1f} s: "
          f"{60 * len(jobs) / wall:.1f} jobs/min")
    if jobs:
        print(f"job latency (submit → results fetched): p50 {statistics.median(jobs):.2f} s, "
              f"p95 {percentile(jobs, 95):.2f} s")
    if status:
        print(f"status calls while jobs ran: {len(status)}, p50 {1000 * statistics.median(status):.1f} ms, "
              f"p95 {1000 * percentile(status, 95):.1f} ms, max {1000 * max(status):.1f} ms")
    print(f"results intact (equal to the job run alone, own jobs only): {intact} of {submitted}")
    return 0 if intact == submitted == args.clients * args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
