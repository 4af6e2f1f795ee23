"""Helpers of the server tests: a tiny model catalogue, a phantom CT, and a real ``spectrum-attack serve``
subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]
TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef"}
CLASSES = ({"id": 0, "name": "background", "rgb": [0, 0, 0]}, {"id": 1, "name": "organ", "rgb": [220, 120, 90]},
           {"id": 2, "name": "bone", "rgb": [240, 240, 210]})
#: the tiny UNet: build_model keywords and preprocessing (1.5×1.5×2 mm, the seed's window, 16³ ROI).
TINY_ARGUMENTS = {"channels": [4, 8], "strides": [2], "num_res_units": 0}
PREPROCESSING = {"orientation": "RAS", "spacing_mm": [1.5, 1.5, 2.0], "a_min": -175.0, "a_max": 250.0,
                 "b_min": 0.0, "b_max": 1.0, "roi": [16, 16, 16]}
#: uploaded-weights spec of the same model (RemoteSession's model_options).
MODEL_OPTIONS = {"architecture": "unet", "num_classes": 3, "preprocessing": PREPROCESSING, **TINY_ARGUMENTS}


def phantom(shape: tuple[int, int, int] = (24, 20, 16), seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hu int16 [I, J, K], labels uint8, affine)``: a body with an organ and a bone strip, 1.5×1.5×2 mm RAS."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    body = i ** 2 / 0.8 + j ** 2 / 0.7 < 1
    organ = (i + 0.2) ** 2 + j ** 2 + k ** 2 < 0.25
    bone = body & (np.abs(j - 0.6) < 0.1)
    hu = np.where(body, -40, -1000) + rng.normal(0, 20, shape)
    hu[organ] = 120 + rng.normal(0, 20, int(organ.sum()))
    hu[bone] = 700
    labels = np.zeros(shape, np.uint8)
    labels[organ], labels[bone] = 1, 2
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    affine[:3, 3] = (-18.0, -15.0, -16.0)
    return hu.astype(np.int16), labels, affine


def write_tiny_model(folder: Path) -> Path:
    """A resources folder (``models.json`` + weights) whose catalogue holds ``tiny-unet`` (random weights, seed 0);
    returns the weights file."""
    import torch

    from SpectrumAttackLib.models import build_model, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_model("unet", 3, **TINY_ARGUMENTS)
    (folder / "weights").mkdir(exist_ok=True)
    weights = folder / "weights" / "tiny.pt"
    save_checkpoint(weights, net)
    entry = {"name": "tiny-unet", "architecture": "unet", "arguments": TINY_ARGUMENTS, "num_classes": 3,
             "classes": list(CLASSES), "preprocessing": PREPROCESSING, "weights": "weights/tiny.pt", "sha256": "",
             "provenance": "random weights, seed 0 (tests)", "description": "tiny test UNet"}
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}), encoding="utf-8")
    return weights


def write_tokens(path: Path, tokens: dict[str, str] = TOKENS) -> Path:
    path.write_text("".join(f"{owner} {token}\n" for owner, token in tokens.items()), encoding="utf-8")
    return path


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running ``spectrum-attack serve`` subprocess."""

    url: str
    port: int
    process: subprocess.Popen
    log: Path
    data: Path

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(data: Path, tokens_file: Path, resources: Path, *, port: int | None = None,
                 extra: Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 90.0) -> Server:
    """Start a server on 127.0.0.1 and wait until ``/healthz`` answers."""
    port = port or free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO), "SPECTRUMATTACK_RESOURCES": str(resources),
                   "OMP_NUM_THREADS": "1", **(env or {})}
    log = data.parent / f"server-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "SpectrumAttackLib.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--token-file", str(tokens_file), "--data", str(data), "--device", "cpu", *extra],
            cwd=REPO, env=environment, stdout=stream, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(url, port, process, log, data)
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not answer within {timeout} s:\n{log.read_text()}")


@contextlib.contextmanager
def running_server(data: Path, tokens_file: Path, resources: Path, **kwargs) -> Iterator[Server]:
    server = start_server(data, tokens_file, resources, **kwargs)
    try:
        yield server
    finally:
        server.stop()


#: Python source that makes torch and MONAI unimportable in the process that runs it first.
BLOCK_TORCH = '''
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai", "torchvision"):
            raise ImportError(f"{name} is made unimportable in this test")
sys.meta_path.insert(0, _NoTorch())
'''


def run_without_torch(code: str, env: dict[str, str] | None = None, timeout: float = 300.0) -> str:
    """Run ``code`` in a fresh Python with torch and MONAI unimportable; returns its stdout (fails on an error)."""
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
