"""``spectrum-attack serve`` and :class:`~SpectrumAttackLib.remote.RemoteSession` over real HTTP: a uvicorn server
in a subprocess on a free 127.0.0.1 port, the real client, tiny nets."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_helpers import MODEL_OPTIONS, PREPROCESSING, TINY_ARGUMENTS, TOKENS, phantom, start_server

from SpectrumAttackLib.cli.main import main
from SpectrumAttackLib.remote import (
    AuthenticationError,
    Cancelled,
    RemoteError,
    RemoteJobError,
    RemoteSession,
    ServerBusyError,
    ServerUnreachableError,
    VersionMismatchError,
)
from SpectrumAttackLib.remote.protocol import META_HEADER, PROTOCOL_HEADER, encode_volume, meta_header

#: a job that runs until cancelled (tiny volume, one step costs milliseconds).
ENDLESS = {"kind": "attack", "model": "tiny-unet", "attack": "pgd", "params": {"steps": 1_000_000},
           "settings": {"precision": "fp32"}}


def session(server: Any, owner: str = "alice", **kwargs: Any) -> RemoteSession:
    return RemoteSession(server.url, TOKENS[owner], poll_s=0.05, **kwargs)


def wait_for(client: RemoteSession, job_id: str, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.status(job_id)
        if predicate(record):
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the expected state: {record}")


def submit_endless(client: RemoteSession) -> dict[str, Any]:
    hu, _, affine = phantom()
    return client.submit({**ENDLESS, "image": client.upload_volume(hu, affine, name="image")})


def start_endless(client: RemoteSession) -> dict[str, Any]:
    job = submit_endless(client)
    return wait_for(client, job["id"], lambda r: r["state"] == "running" and r["progress"]["stage"] == "attack")


@pytest.fixture
def one_thread() -> Any:
    """The local runs use one thread, as the server's worker (OMP_NUM_THREADS=1): same float reductions."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_attack_matches_a_local_run_with_the_same_seed(server: Any, resources: Path, one_thread: None) -> None:
    from SpectrumAttackLib.models import load_model
    from SpectrumAttackLib.models.catalogue import Preprocessing
    from SpectrumAttackLib.workflows.single import SingleVolumeResult, attack_single_volume

    hu, labels, affine = phantom()
    weights = resources / "weights" / "tiny.pt"
    params = {"steps": 3, "rho": 0.3, "block_size": 8}
    reports: list[Any] = []
    uploads_before = sorted((server.data / "uploads").glob("*.json"))
    remote = session(server).attack((hu, affine), model=str(weights), model_options=MODEL_OPTIONS, attack="saa",
                                    params=params, reference_labels=labels, seed=3, precision="fp32",
                                    progress=reports.append)
    loaded = load_model(weights, "cpu", architecture="unet", num_classes=3,
                        preprocessing=Preprocessing(**{k: tuple(v) if isinstance(v, list) else v
                                                       for k, v in PREPROCESSING.items()}), **TINY_ARGUMENTS)
    local = attack_single_volume((hu, affine), model=loaded, attack="saa", params=params, reference_labels=labels,
                                 seed=3, precision="fp32")
    assert type(remote) is SingleVolumeResult
    for name in ("adversarial", "perturbation", "seg_clean", "seg_adv"):
        got, want = getattr(remote, name), getattr(local, name)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), name
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert strip(remote.metrics) == strip(local.metrics)
    assert remote.classes == local.classes
    assert remote.attack_config["seed"] == 3 and remote.attack_config["precision_used"] == "fp32"
    # which stages a poll happens to see depends on timing (a 3-step attack can pass between two polls); the
    # progress test below follows a long job through its stages
    assert reports and reports[-1].done == reports[-1].total
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert session(server).jobs() == []  # fetched results are deleted on the server, and the uploads with them
    assert sorted((server.data / "uploads").glob("*.json")) == uploads_before


def test_audit_matches_a_local_run(server: Any, resources: Path, monkeypatch: pytest.MonkeyPatch,
                                   one_thread: None, tmp_path: Path) -> None:
    from SpectrumAttackLib.pipeline.results import AuditResult
    from SpectrumAttackLib.workflows.robustness import audit

    monkeypatch.setenv("SPECTRUMATTACK_RESOURCES", str(resources))
    hu, labels, affine = phantom()
    grid = {"attacks": {"pgd": {"eps": [2, 6], "params": {"steps": 2}}, "gn": {"std": [4]}}}
    remote = session(server).audit((hu, affine), models=["tiny-unet"], labels=labels, grid=grid, precision="fp32",
                                   output=tmp_path / "remote")
    local = audit((hu, affine), models=["tiny-unet"], labels=labels, grid=grid, precision="fp32")
    assert type(remote) is AuditResult
    assert len(remote.cells) == len(local.cells) == 3
    for got, want in zip(remote.cells, local.cells, strict=True):
        for key in ("attack", "budget", "dice", "hd95", "ssim_3d", "psnr", "fingerprint"):
            assert got[key] == pytest.approx(want[key], nan_ok=True) if isinstance(want[key], float) \
                else got[key] == want[key], key
    assert remote.summary["per_model"]["tiny-unet"]["robust_dice"] == pytest.approx(
        local.summary["per_model"]["tiny-unet"]["robust_dice"], nan_ok=True)
    assert sorted(p.name for p in remote.folder.iterdir()) == sorted(
        ["audit.csv", "audit.json", "curves.png", "manifest.json", "report.html"])


def test_progress_and_log_while_running_then_cancel(server: Any, tmp_path: Path) -> None:
    client = session(server)
    record = start_endless(client)
    later = wait_for(client, record["id"], lambda r: r["progress"]["done"] > record["progress"]["done"])
    assert later["progress"]["total"] > later["progress"]["done"] > 0
    assert later["progress"]["eta_s"] is not None and later["progress"]["eta_s"] > 0
    assert any(line.startswith("attack") for line in later["log"])
    with pytest.raises(Cancelled):
        client.wait(record["id"], cancel=lambda: True)
    final = client.status(record["id"])
    assert final["state"] == "cancelled" and final["files"] == []
    with pytest.raises(RemoteError, match="must be done"):
        client.fetch(record["id"], "result.json")
    client.cancel(record["id"])  # a finished job: deleted
    with pytest.raises(RemoteError, match="404"):
        client.status(record["id"])


def test_an_audit_is_cancelled_between_cells(server: Any) -> None:
    client = session(server)
    hu, _, affine = phantom()
    job = client.submit({"kind": "audit", "image": client.upload_volume(hu, affine, name="image"),
                         "models": ["tiny-unet"], "grid": {"attacks": {"gn": {"std": list(range(1, 41))}}},
                         "settings": {"precision": "fp32"}})
    wait_for(client, job["id"], lambda r: r["state"] == "running" and r["progress"]["stage"] == "audit")
    with pytest.raises(Cancelled):
        client.wait(job["id"], cancel=lambda: True)
    record = client.status(job["id"])
    assert record["state"] == "cancelled" and record["progress"]["done"] < 40 and record["files"] == []
    client.cancel(job["id"])


def test_bad_input_gets_the_engine_words(server: Any, one_thread: None) -> None:
    from SpectrumAttackLib.workflows.single import attack_single_volume

    client = session(server)
    hu, labels, affine = phantom()
    with pytest.raises(ValueError, match="attack must be one of") as remote_error:
        client.attack((hu, affine), model="tiny-unet", attack="nope")
    with pytest.raises(ValueError) as local_error:
        attack_single_volume((hu, affine), model="tiny-unet", attack="nope")
    assert str(remote_error.value) == str(local_error.value)
    # a value the engine refuses while running the job: the same exception type and sentence as a local run
    with pytest.raises(ValueError) as remote_error:
        client.attack((hu, affine), model="tiny-unet", attack="saa", params={"rho": 5.0}, precision="fp32")
    assert "rho must be" in str(remote_error.value)
    with pytest.raises(ValueError, match="model must be one of"):
        client.attack((hu, affine), model="not-in-the-catalogue", attack="pgd")
    with pytest.raises(ValueError, match="labels must hold class ids"):
        client.attack((hu, affine), model="tiny-unet", attack="pgd", reference_labels=labels * 3)
    with pytest.raises(ValueError, match="grid must be one of"):
        client.audit((hu, affine), models=["tiny-unet"], grid="/etc/passwd")


def test_corrupt_uploads_are_refused(server: Any) -> None:
    client = session(server)
    hu, _, affine = phantom()
    body, meta = encode_volume(hu, affine)
    headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
    for content, meta_text, words in [
        (body[: len(body) // 2], meta_header(meta), "does not decode"),
        (b"\x00" * len(body), meta_header(meta), "does not decode"),
        (body, "{not json", "X-Meta must be a JSON object"),
        (body, meta_header({**meta, "shape": [24, 20]}), "shape must be three positive integers"),
    ]:
        reply = httpx.post(f"{server.url}/v1/volumes", content=content, headers={**headers, META_HEADER: meta_text})
        assert reply.status_code == 400 and words in reply.json()["detail"]
    with pytest.raises(ValueError, match="must hold finite intensities"):
        client.upload_volume(np.full((4, 4, 4), np.nan, np.float32), affine)
    assert not [p for p in (Path(server.log).parent).rglob(".*partial*")]


def test_tokens_are_required_and_checked(server: Any) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["protocol"] == 1  # health needs no token
    reply = httpx.get(f"{server.url}/v1/jobs")
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/v1/jobs", headers={"Authorization": "Basic abc"}).status_code == 401
    wrong = RemoteSession(server.url, "wrong-token-0123456789")
    with pytest.raises(AuthenticationError, match="refused the token"):
        wrong.jobs()


def test_two_tokens_see_only_their_own_jobs(server: Any) -> None:
    alice, bob = session(server, "alice"), session(server, "bob")
    started: dict[str, Any] = {}

    def submit(owner: str, client: RemoteSession) -> None:
        started[owner] = submit_endless(client)

    threads = [threading.Thread(target=submit, args=args) for args in (("alice", alice), ("bob", bob))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        alice_ids, bob_ids = {j["id"] for j in alice.jobs()}, {j["id"] for j in bob.jobs()}
        assert started["alice"]["id"] in alice_ids and started["bob"]["id"] in bob_ids
        assert not alice_ids & bob_ids
        for call in (bob.status, bob.cancel):
            with pytest.raises(RemoteError, match="404"):
                call(started["alice"]["id"])
        assert alice.status(started["alice"]["id"])["state"] in ("queued", "running")
        image = alice.status(started["alice"]["id"])["request"]["image"]
        with pytest.raises(RemoteError, match="404"):
            bob.submit({**ENDLESS, "image": image})
        with pytest.raises(RemoteError, match="404"):
            bob.delete_upload(image)
        with pytest.raises(ValueError, match="must not be in use to be deleted"):
            alice.delete_upload(image)
    finally:
        for client, owner in ((alice, "alice"), (bob, "bob")):
            client.cancel(started[owner]["id"])
            with pytest.raises(Cancelled):
                client.wait(started[owner]["id"])
            client.cancel(started[owner]["id"])


def test_protocol_version_is_checked(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = httpx.get(f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {TOKENS['alice']}",
                                                        PROTOCOL_HEADER: "99"})
    assert reply.status_code == 426 and "must be 1" in reply.json()["detail"]
    import SpectrumAttackLib.remote.session as module

    monkeypatch.setattr(module, "PROTOCOL_VERSION", 2)
    with pytest.raises(VersionMismatchError, match=r"speaks protocol 1 .* this client protocol 2"):
        session(server).ping()


def test_unreachable_server_is_one_line() -> None:
    from server_helpers import free_port

    client = RemoteSession(f"http://127.0.0.1:{free_port()}", TOKENS["alice"], retries=0)
    with pytest.raises(ServerUnreachableError, match=r"cannot reach the SpectrumAttack server at .*check the URL"):
        client.ping()


@pytest.mark.slow
def test_full_queue_upload_limit_and_a_server_killed_mid_job(tmp_path: Path, resources: Path,
                                                             tokens_file: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, tokens_file, resources, extra=["--max-jobs", "1", "--max-upload-mb", "1"])
    try:
        client = session(server, reconnect_s=1.0)
        running = start_endless(client)
        hu, _, affine = phantom()
        with pytest.raises(ServerBusyError, match=r"busy \(503\).*--max-jobs\) is 1"):
            client.submit({**ENDLESS, "image": running["request"]["image"]})
        big = np.zeros((128, 128, 64), np.float32)
        big[:] = np.random.default_rng(0).normal(size=big.shape)  # incompressible: over 1 MiB on the wire
        with pytest.raises(ValueError, match="at most 1048576 bytes"):
            client.upload_volume(big, affine)
        streamed = httpx.post(f"{server.url}/v1/weights", content=iter([b"x" * 65536] * 40),
                              headers={"Authorization": f"Bearer {TOKENS['alice']}"})  # chunked: no length
        assert streamed.status_code == 413
        server.stop(kill=True)
        with pytest.raises(ServerUnreachableError, match="cannot reach"):
            client.status(running["id"])
        assert (data / "jobs" / running["id"] / "job.json").is_file()
        server = start_server(data, tokens_file, resources, port=server.port,
                              extra=["--max-jobs", "1", "--max-upload-mb", "1"])
        with pytest.raises(RemoteJobError, match="server stopped while this job was running"):
            client.wait(running["id"])
        with pytest.raises(RemoteError, match="must be done"):
            client.fetch(running["id"], "adversarial.vol")
        assert [p.name for p in (data / "jobs" / running["id"]).iterdir()] == ["job.json"]
        result = client.attack((hu, affine), model="tiny-unet", attack="fgsm", precision="fp32")  # queue free again
        assert result.adversarial.shape == hu.shape
    finally:
        server.stop()


def test_weights_are_loaded_safely(server: Any, tmp_path: Path) -> None:
    import pickle

    import torch

    from SpectrumAttackLib.models import build_model

    client = session(server)
    hu, _, affine = phantom()
    scripted = tmp_path / "net.ts"
    net = build_model("unet", 3, **TINY_ARGUMENTS).eval()
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 16, 16, 16), check_trace=False), str(scripted))
    with pytest.raises(ValueError, match="--trust-model-code"):
        client.attack((hu, affine), model=str(scripted), attack="fgsm", model_options={"num_classes": 3})
    pickled = tmp_path / "evil.pt"
    pickled.write_bytes(pickle.dumps({"state_dict": Path("/")}))
    with pytest.raises(ValueError):
        client.attack((hu, affine), model=str(pickled), attack="fgsm", model_options=MODEL_OPTIONS)


def test_serve_refuses_bad_token_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.txt"
    short.write_text("alice abc\n")
    assert main(["serve", "--token-file", str(short), "--port", "1"]) == 2
    assert "tokens must have at least 16 characters, got 3 on line 1" in capsys.readouterr().err
    assert main(["serve", "--token-file", str(tmp_path / "missing.txt")]) == 2
    assert "--token-file must be a file" in capsys.readouterr().err


def test_docs_page_lists_the_serve_flags() -> None:
    import re

    from SpectrumAttackLib.cli.main import build_parser

    page = (Path(__file__).resolve().parents[2] / "docs" / "remote.md").read_text(encoding="utf-8")
    table = page.split("| flag | meaning (default) |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)", table, flags=re.MULTILINE))
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    flags = {s for a in subparsers.choices["serve"]._actions for s in a.option_strings if s.startswith("--")}
    assert documented == flags - {"--help"}
