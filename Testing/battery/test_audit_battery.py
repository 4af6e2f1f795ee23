"""The audit's safety battery: ``--resume`` reuses a cell only for the same data, model and resolved precision;
one audit at a time per ``--output``; failures leave nothing behind; bad folders get one line.

Each test runs ``spectrum-attack audit`` in-process on the battery's tiny case and TorchScript model (two cheap
cells: Gaussian noise and FGSM) and checks the battery's way: exit code, one line on stderr naming the setting, no
traceback, the listing of the test folder and the files' hashes before and after.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from battery_helpers import AFFINE, ct_like, hashes, listing, torchscript_model, write_case

from SpectrumAttackLib.cli.main import main as spectrum_attack

GRID = {"attacks": {"gn": {"std": [8]}, "fgsm": {"eps": [4]}}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return torchscript_model(tmp_path_factory.mktemp("audit-battery-model") / "tiny.ts")


@pytest.fixture()
def case(tmp_path: Path, tiny_model: Path) -> dict[str, Path]:
    _, image, label = write_case(tmp_path, *ct_like())
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID))
    return {"image": image, "label": label, "model": tiny_model, "grid": grid, "output": tmp_path / "out"}


def audit(case: dict[str, Path], capsys: pytest.CaptureFixture, *flags: str) -> tuple[int, str, list[str]]:
    argv = ["audit", "--image", str(case["image"]), "--label", str(case["label"]), "--model", str(case["model"]),
            "--grid", str(case["grid"]), "--output", str(case["output"]), "--device", "cpu", *flags]
    capsys.readouterr()
    code = spectrum_attack(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def refused(code: int, err: list[str], expect: str) -> None:
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("spectrum-attack: error: "), err
    assert expect in err[0], err[0]
    assert "Traceback" not in err[0]


def document(case: dict[str, Path]) -> dict:
    return json.loads((case["output"] / "audit.json").read_text())


# ------------------------------------------------------------------------------------------------------- D2
@pytest.mark.parametrize("replaced", ["image", "label"])
def test_resume_after_the_data_changed_under_the_same_name_reuses_nothing(replaced: str, case: dict[str, Path],
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert audit(case, capsys, "--precision", "fp32")[0] == 0
    before = document(case)
    image, labels = ct_like()
    if replaced == "image":
        image = np.where(image > -500, image + 60.0, image).astype(np.float32)  # another patient, same file name
        nib.save(nib.Nifti1Image(image, AFFINE), case["image"])
    else:
        labels = np.where(labels == 2, 1, labels).astype(np.uint8)
        nib.save(nib.Nifti1Image(labels, AFFINE), case["label"])
    code, out, err = audit(case, capsys, "--precision", "fp32", "--resume")
    assert code == 0, err
    assert "2 cells; results" in out and "reused" not in out
    after = document(case)
    assert after["manifest"]["cells_reused"] == 0
    assert not {c["fingerprint"] for c in after["cells"]} & {c["fingerprint"] for c in before["cells"]}
    assert after["clean"][0]["fingerprint"] != before["clean"][0]["fingerprint"]
    assert after["clean"][0]["dice"] != before["clean"][0]["dice"]  # the numbers of the new data, not the old
    # the same data again: everything is reused
    code, out, _ = audit(case, capsys, "--precision", "fp32", "--resume")
    assert code == 0 and "2 cells (2 reused)" in out


# ------------------------------------------------------------------------------------------------------- D3
def test_resume_where_auto_resolves_otherwise_reuses_nothing(case: dict[str, Path], capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted where ``auto`` is bf16 (a CPU with AVX512-BF16), resumed where it is fp32: no bf16 cell is kept."""
    import SpectrumAttackLib.precision as precision
    from SpectrumAttackLib.runtime import Progress

    class StopError(Exception):
        pass

    def stop_after_one(progress: Progress) -> None:
        if progress.done == 1:
            raise StopError

    from SpectrumAttackLib.workflows import audit as audit_api

    run = {"image": case["image"], "labels": case["label"], "models": [str(case["model"])], "grid": GRID,
           "output": case["output"], "device": "cpu", "name": "img0001"}
    monkeypatch.setattr(precision, "cpu_bf16_features", lambda: ("avx512_bf16",))
    with pytest.raises(StopError):
        audit_api(**run, progress=stop_after_one)
    staged = case["output"].parent / ".out.audit-partial" / "cells.rank0.jsonl"
    assert [json.loads(line)["precision_used"] for line in staged.read_text().splitlines()] == ["bf16"]

    monkeypatch.setattr(precision, "cpu_bf16_features", lambda: ())
    result = audit_api(**run, resume=True)
    assert result.reused == 0
    assert {c["precision_used"] for c in result.cells} == {"fp32"}
    assert {c["precision_used"] for c in result.clean} == {"fp32"}
    assert result.manifest["precision_used"] == "fp32" and result.manifest["settings"]["precision"] == "auto"


# ------------------------------------------------------------------------------------------------------- D4
@pytest.mark.parametrize("change", ["precision", "model"])
def test_resume_onto_a_finished_audit_of_another_model_or_precision_is_refused(
        change: str, case: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert audit(case, capsys, "--precision", "fp32")[0] == 0
    other = {**case}
    flags = ["--precision", "fp32", "--resume"]
    if change == "precision":
        flags[1] = "bf16"
        expect = ("--output holds an audit of tiny.ts ({}) in fp32, not of tiny.ts ({}) in bf16; use another "
                  "folder or --overwrite.")
    else:
        other["model"] = torchscript_model(tmp_path / "other.ts", seed=7)  # another model with the same classes
        expect = "--output holds an audit of tiny.ts ({}) in fp32, not of other.ts ("
    files, content = listing(tmp_path), hashes(tmp_path)
    code, _, err = audit(other, capsys, *flags)
    sha = document(case)["manifest"]["models"][0]["weights_sha256"][:12]
    refused(code, err, expect.format(sha, sha))
    assert listing(tmp_path) == files and hashes(tmp_path) == content  # earlier results untouched, nothing new


# ------------------------------------------------------------------------------------------------------- D5
def test_a_second_audit_into_a_busy_output_is_refused_and_the_first_keeps_its_records(
        case: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """The first audit is represented by what it holds while it runs: the lock and a finished record in staging."""
    from SpectrumAttackLib.audit.lock import OutputLock

    staging = tmp_path / ".out.audit-partial"
    staging.mkdir()
    (staging / "cells.rank0.jsonl").write_text('{"fingerprint": "abc", "dice": 0.5}\n')
    with OutputLock(case["output"]):
        files, content = listing(tmp_path), hashes(tmp_path)
        for flags in ((), ("--resume",), ("--overwrite",)):
            code, _, err = audit(case, capsys, *flags)
            refused(code, err, f"--output must not be in use by another audit, got {str(case['output'])!r}, which "
                               f"another running audit is writing")
            assert listing(tmp_path) == files and hashes(tmp_path) == content
    assert not (tmp_path / ".out.audit-lock").exists()  # released and removed by its holder
    # once the first is gone, the folder is free again
    assert audit(case, capsys, "--resume")[0] == 0


# ------------------------------------------------------------------------------------------------------- D7
def _labels_beyond_the_classes(case: dict[str, Path]) -> None:
    labels = ct_like()[1]
    labels[2, 2, 2] = 3  # the model has 3 classes: 0, 1, 2
    nib.save(nib.Nifti1Image(labels, AFFINE), case["label"])


@pytest.mark.parametrize(("flags", "breaks", "expect"), [
    (("--precision", "fp16"), None,
     "precision must be 'auto', 'fp32' or 'bf16' on cpu (fp16 runs on CUDA GPUs only), got 'fp16'."),
    ((), _labels_beyond_the_classes, "--label must hold class ids in [0, 2] (the model has 3 classes), got 3."),
], ids=["fp16-on-cpu", "label-equal-to-the-class-count"])
def test_a_failed_audit_leaves_nothing_behind(flags, breaks, expect, case: dict[str, Path],
                                              capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    case["output"] = tmp_path / "deep" / "out"
    if breaks is not None:
        breaks(case)
    files, content = listing(tmp_path), hashes(tmp_path)
    code, _, err = audit(case, capsys, *flags)
    refused(code, err, expect)
    assert listing(tmp_path) == files and hashes(tmp_path) == content  # no .out.audit-partial, no deep/


# ------------------------------------------------------------------------------------------------------- D8
def test_an_output_where_nothing_can_be_created_is_one_line(case: dict[str, Path],
                                                           capsys: pytest.CaptureFixture) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    case["output"] = Path("/proc/out")
    code, _, err = audit(case, capsys)
    refused(code, err, "--output must be writable, got '/proc/out' (")


# ------------------------------------------------------------------------------------------------------ D12
def test_the_precision_used_is_in_the_manifest_the_csv_and_every_record(case: dict[str, Path],
                                                                         capsys: pytest.CaptureFixture) -> None:
    import csv

    from SpectrumAttackLib.precision import resolve_precision

    code, _, err = audit(case, capsys)
    assert code == 0, err
    used = resolve_precision("auto", "cpu").name
    manifest = json.loads((case["output"] / "manifest.json").read_text())
    assert manifest["settings"]["precision"] == "auto" and manifest["precision_used"] == used
    with (case["output"] / "audit.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["attack"] for r in rows] == ["clean", "gn", "fgsm"]
    assert {r["precision_used"] for r in rows} == {used}
    assert not list(case["output"].parent.glob(".out.*"))  # no staging folder, no lock file


# ------------------------------------------------------------------------------ cosmetic: discarded records
def test_rerunning_an_interrupted_audit_without_resume_says_it_discards_its_cells(
        case: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    staging = tmp_path / ".out.audit-partial"
    staging.mkdir()
    (staging / "cells.rank0.jsonl").write_text('{"fingerprint": "a"}\n{"fingerprint": "b"}\n')
    with pytest.warns(UserWarning, match=r"--output: 2 finished cell\(s\) of an interrupted audit in .* are "
                                         r"discarded \(give --resume to keep them\)"):
        code, _, err = audit(case, capsys)
    assert code == 0, err
    assert document(case)["manifest"]["cells_reused"] == 0


def test_a_grid_file_of_another_kind_is_named_as_a_grid_file(case: dict[str, Path], capsys: pytest.CaptureFixture,
                                                             tmp_path: Path) -> None:
    """Cosmetic: ``--grid grid.txt`` was refused as "preset must be one of ..."."""
    case["grid"] = tmp_path / "grid.txt"
    case["grid"].write_text(json.dumps(GRID))
    files, content = listing(tmp_path), hashes(tmp_path)
    code, _, err = audit(case, capsys)
    refused(code, err, f"--grid must be a grid file ending in .yaml, .yml or .json, got {str(case['grid'])!r} (the "
                       f"presets go to --preset).")
    assert listing(tmp_path) == files and hashes(tmp_path) == content
