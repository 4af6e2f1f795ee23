"""The bad-input battery: the same broken cases through every interface give the same message class, the
interface's exit code, no traceback, nothing left behind and untouched inputs.

Interfaces: ``spectrum-attack attack`` on a dataset (``--data_dir``/``--json_list``), ``spectrum-attack attack
--image/--label``, the Slicer CLI module script (``SpectrumAttackCLI.py``, its documented exit code 1), the Python
API (``attack_single_volume``) and the module logic on a slicer-core scene (``SpectrumAttackLogic.run``).

Not every case exists on every interface: the logic takes scene nodes, so file faults (missing, truncated, not an
image) belong to Slicer's reader, a reference labelmap on another grid is resampled onto the input by design, and
it writes no files (no output folder to be unwritable or already full); the Python API returns arrays and writes
nothing. Those pairs are not generated (see ``CASES``).
"""

from __future__ import annotations

import importlib.util
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from battery_helpers import (
    AFFINE,
    NUM_CLASSES,
    Inputs,
    ct_like,
    environment,
    hashes,
    listing,
    not_an_image,
    torchscript_model,
    truncate,
    unsafe_bundle,
    unsafe_nnunet_folder,
    write_case,
)

from SpectrumAttackLib.cli.main import main as spectrum_attack

ROOT = Path(__file__).resolve().parents[2]
CLI_SCRIPT = ROOT / "SpectrumAttackCLI" / "SpectrumAttackCLI.py"
DATASET, IMAGE, SLICER_CLI, API, LOGIC = "dataset-cli", "image-cli", "slicer-cli", "python-api", "logic"
EVERY = (DATASET, IMAGE, SLICER_CLI, API, LOGIC)
FILES = (DATASET, IMAGE, SLICER_CLI, API)
WRITERS = (DATASET, IMAGE, SLICER_CLI)


@dataclass(frozen=True)
class Case:
    """A broken input: what every interface's message must contain, where it applies, how to break the inputs."""

    expect: str
    interfaces: tuple[str, ...]
    breaks: Callable[[Inputs], None]
    needs_nnunet: bool = False


def _image(array: np.ndarray) -> Callable[[Inputs], None]:
    def apply(inputs: Inputs) -> None:
        nib.save(nib.Nifti1Image(array, AFFINE), inputs.image)
        inputs.image_array = array
    return apply


def _labels(array: np.ndarray) -> Callable[[Inputs], None]:
    def apply(inputs: Inputs) -> None:
        nib.save(nib.Nifti1Image(array, AFFINE), inputs.label)
        inputs.label_array = array
    return apply


def _with_voxel(value: float) -> np.ndarray:
    image = ct_like()[0].copy()
    image[3, 4, 5] = value
    return image


def _label_value(value: float, dtype: type) -> np.ndarray:
    labels = ct_like()[1].astype(dtype)
    labels[2, 2, 2] = value
    return labels


def _file_fault(fault: Callable[[Path], None], which: str) -> Callable[[Inputs], None]:
    def apply(inputs: Inputs) -> None:
        fault(getattr(inputs, which))
        setattr(inputs, f"{which}_array", None)
    return apply


def _missing(which: str) -> Callable[[Inputs], None]:
    return _file_fault(lambda path: path.unlink(), which)


def _mismatched_model(inputs: Inputs) -> None:
    inputs.model = torchscript_model(inputs.root / "models" / "says_5_classes.ts", stated_classes=5)


def _unsafe_model(inputs: Inputs) -> None:
    inputs.marker = inputs.root / "models" / "bundle-code-ran.txt"
    inputs.model = unsafe_bundle(inputs.root / "models" / "evil_bundle", inputs.marker)


def _unsafe_plans(key: str, value: str) -> Callable[[Inputs], None]:
    """The real nnU-Net test model with ``value`` in the plans' ``key`` and a hubconf.py that must never run."""
    def apply(inputs: Inputs) -> None:
        inputs.marker = inputs.root / "models" / "hubconf-ran.txt"
        inputs.model = unsafe_nnunet_folder(inputs.nnunet, inputs.root / "models" / "evil" / inputs.nnunet.name,
                                            inputs.marker, key, value)
    return apply


def _plans_message(key: str, kind: str = "a torch.nn layer, normalisation, dropout or activation class") -> str:
    return f"must name {kind} in 'configurations.3d_fullres.architecture.{key}', got"


def _bad_attack(inputs: Inputs) -> None:
    inputs.params = {"eps": -1.0}


def _blocks_beyond_the_tile(inputs: Inputs) -> None:
    inputs.attack, inputs.params = "saa", {"steps": 1, "block_size": (32, 32, 32)}  # the ROI (tile) is 16³


def _unwritable(inputs: Inputs) -> None:
    blocker = inputs.root / "out" / "a_file"
    blocker.parent.mkdir()
    blocker.write_text("in the way")
    inputs.output = blocker / "results"


def _second_run(inputs: Inputs) -> None:
    inputs.output.mkdir()
    (inputs.output / "metrics.json").write_text('{"from": "the first run"}')
    (inputs.output / "metrics.csv").write_text("case,cleanDice\nimg0001,0.5\n")
    inputs.batch = True


CASES: dict[str, Case] = {
    "nan-voxels": Case("finite", EVERY, _image(_with_voxel(np.nan))),
    "inf-voxels": Case("finite", EVERY, _image(_with_voxel(np.inf))),
    "2d-image": Case("3-D", EVERY, _image(ct_like()[0][:, :, 5].copy())),
    "4d-image": Case("3-D scalar", EVERY, _image(np.stack([ct_like()[0]] * 2, axis=-1))),
    "truncated-image": Case("readable", FILES, _file_fault(truncate, "image")),
    "not-an-image": Case("readable", FILES, _file_fault(not_an_image, "image")),
    "missing-image": Case("no such file", FILES, _missing("image")),
    "missing-label": Case("no such file", FILES, _missing("label")),
    "label-out-of-range": Case("class ids in [0, 2]", EVERY, _labels(_label_value(7, np.uint8))),
    "label-negative": Case(">= 0", EVERY, _labels(_label_value(-1, np.int16))),
    "label-non-integer": Case("integer class", EVERY, _labels(_label_value(0.5, np.float32))),
    "label-other-shape": Case("shape", FILES, _labels(np.zeros((10, 10, 10), np.uint8))),
    "bad-attack-parameter": Case("eps must", EVERY, _bad_attack),
    "blocks-beyond-the-tile": Case("block_size must not exceed the model's ROI", EVERY, _blocks_beyond_the_tile),
    "model-channel-mismatch": Case("channels", EVERY, _mismatched_model),
    "unsafe-bundle": Case("--trust_model_code", EVERY, _unsafe_model),
    # D1: nnU-Net resolves dotted names by walking attributes; each of these reaches torch.hub.load (or os.system)
    "nnunet-network-class-reaching-torch-hub": Case(
        _plans_message("network_class_name", "a network class of dynamic_network_architectures"), EVERY,
        _unsafe_plans("network_class_name", "dynamic_network_architectures.architectures.unet.torch.hub.load"),
        needs_nnunet=True),
    "nnunet-nonlin-reaching-torch-hub": Case(
        _plans_message("arch_kwargs.nonlin"), EVERY,
        _unsafe_plans("nonlin", "torch.nn.modules.module.torch.hub.load"), needs_nnunet=True),
    # D10: a name that passed the old prefix check and ended in a TypeError traceback
    "nnunet-conv-op-reaching-os-system": Case(
        _plans_message("arch_kwargs.conv_op"), EVERY, _unsafe_plans("conv_op", "torch.nn.modules.conv.os.system"),
        needs_nnunet=True),
    "unwritable-output": Case("writable", WRITERS, _unwritable),
    "second-run-into-results": Case("already hold results", WRITERS, _second_run),
}


@pytest.fixture(scope="module")
def good_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return torchscript_model(tmp_path_factory.mktemp("battery-model") / "tiny_unet.ts")


def make_inputs(root: Path, model: Path) -> Inputs:
    image, labels = ct_like()
    data_dir, image_path, label_path = write_case(root, image, labels)
    (root / "models").mkdir()
    return Inputs(root=root, data_dir=data_dir, image=image_path, label=label_path, image_array=image,
                  label_array=labels, model=model, output=root / "results")


# ------------------------------------------------------------------------------------------------- interfaces
@dataclass
class Outcome:
    """How a run ended: exit code (None for a Python call), the stderr lines, the exception raised (Python)."""

    code: int | None
    stderr: list[str]
    error: BaseException | None = None

    @property
    def message(self) -> str:
        return str(self.error) if self.error is not None else (self.stderr[0] if self.stderr else "")


def _flags(params: dict[str, Any], slicer_cli: bool = False) -> list[str]:
    """Attack parameters as flags: ``--block_size 32 32 32`` for spectrum-attack, ``--blockSize 32,32,32`` for the
    Slicer CLI module (the other parameters used here are spelled alike)."""
    flags = []
    for key, value in params.items():
        if isinstance(value, tuple):
            flags += ["--blockSize", ",".join(map(str, value))] if slicer_cli else [f"--{key}", *map(str, value)]
        else:
            flags += [f"--{key}", str(value)]
    return flags


def run_spectrum_attack(inputs: Inputs, capsys: pytest.CaptureFixture, single: bool) -> Outcome:
    source = (["--image", str(inputs.image)] + (["--label", str(inputs.label)] if inputs.label else [])) if single \
        else ["--data_dir", str(inputs.data_dir), "--json_list", "split.json"]
    argv = ["attack", *source, "--model", str(inputs.model), "--attack_name", inputs.attack, *_flags(inputs.params),
            "--save_adv_images_dir", str(inputs.output), "--no_sub_dir_adv_images", "--device", "cpu"]
    capsys.readouterr()
    code = spectrum_attack(argv)
    return Outcome(code, capsys.readouterr().err.strip().splitlines())


def _cli_module() -> Any:
    spec = importlib.util.spec_from_file_location("SpectrumAttackCLI", CLI_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def slicer_cli_argv(inputs: Inputs) -> list[str]:
    argv = ["--model", str(inputs.model), "--attack", inputs.attack, "--device", "cpu",
            *_flags(inputs.params, slicer_cli=True)]
    if inputs.batch:
        return [*argv, "--inputDirectory", str(inputs.image.parent), "--outputDirectory", str(inputs.output)]
    if inputs.label is not None:
        argv += ["--referenceLabel", str(inputs.label)]
    out = inputs.output
    return [*argv, "--cleanLabel", str(out / "clean.nii.gz"), "--adversarialLabel", str(out / "adv_seg.nii.gz"),
            "--perturbation", str(out / "perturbation.nrrd"), "--metricsFile", str(out / "metrics.json"),
            "--returnparameterfile", str(out / "return.params"),
            "--inputVolume", str(inputs.image), "--outputVolume", str(out / "adversarial.nrrd")]


def run_slicer_cli(inputs: Inputs, capsys: pytest.CaptureFixture) -> Outcome:
    capsys.readouterr()
    code = _cli_module().main(slicer_cli_argv(inputs))
    return Outcome(code, capsys.readouterr().err.strip().splitlines())


def run_api(inputs: Inputs) -> Outcome:
    from SpectrumAttackLib.workflows.single import attack_single_volume

    try:
        attack_single_volume(inputs.image, model=inputs.model, attack=inputs.attack, params=inputs.params,
                             reference_labels=inputs.label, device="cpu")
    except (ValueError, FileNotFoundError) as error:
        return Outcome(None, [], error)
    return Outcome(None, [])


def _data_nodes(scene: Any) -> list[str]:
    """IDs of the scene's nodes other than singletons (which module logics add when they meet a scene)."""
    nodes = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    return sorted(n.GetID() for n in nodes if not n.GetSingletonTag())


def run_logic(inputs: Inputs) -> Outcome:
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    sys.path.insert(0, str(ROOT / "SpectrumAttack"))
    from SpectrumAttackAdapter.segmentations import segmentations_logic

    from SpectrumAttack import SpectrumAttackLogic

    previous = getattr(slicer, "mrmlScene", None)
    scene = slicer.mrmlScene = slicer.vtkMRMLScene()
    segmentations_logic(scene)  # as in the application, where the Segmentations module has met the scene already
    try:
        image = inputs.image_array
        vector = image.ndim == 4
        node = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode" if vector else "vtkMRMLScalarVolumeNode", "ct")
        node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(AFFINE))
        voxels = image if image.ndim >= 3 else image[:, :, None]
        axes = (2, 1, 0, 3) if vector else (2, 1, 0)
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(voxels.transpose(*axes)))
        reference = None
        if inputs.label_array is not None:
            reference = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "reference")
            reference.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(AFFINE))
            slicer.util.updateVolumeFromArray(reference, np.ascontiguousarray(inputs.label_array.transpose(2, 1, 0)))
        before_nodes, before_voxels = _data_nodes(scene), np.array(slicer.util.arrayFromVolume(node))
        try:
            SpectrumAttackLogic().run(node, model=str(inputs.model), attack=inputs.attack, params=inputs.params,
                                      referenceSegmentation=reference, device="cpu", showResult=False)
        except (ValueError, FileNotFoundError) as error:
            assert _data_nodes(scene) == before_nodes  # no node added
            np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), before_voxels)  # input unchanged
            return Outcome(None, [], error)
        return Outcome(None, [])
    finally:
        scene.Clear(1)
        slicer.mrmlScene = previous


def run_interface(interface: str, inputs: Inputs, capsys: pytest.CaptureFixture) -> Outcome:
    if interface == DATASET:
        return run_spectrum_attack(inputs, capsys, single=False)
    if interface == IMAGE:
        return run_spectrum_attack(inputs, capsys, single=True)
    if interface == SLICER_CLI:
        return run_slicer_cli(inputs, capsys)
    return run_api(inputs) if interface == API else run_logic(inputs)


PAIRS = [pytest.param(case, interface, id=f"{case}-{interface}")
         for case, spec in CASES.items() for interface in spec.interfaces]


@pytest.mark.parametrize(("case", "interface"), PAIRS)
def test_bad_input_is_refused_alike_everywhere(case: str, interface: str, good_model: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture, request: pytest.FixtureRequest) -> None:
    spec = CASES[case]
    inputs = make_inputs(tmp_path, good_model)
    if spec.needs_nnunet:
        inputs.nnunet = request.getfixturevalue("nnunet_model")
    spec.breaks(inputs)
    files_before, hashes_before = listing(tmp_path), hashes(tmp_path)

    outcome = run_interface(interface, inputs, capsys)

    if interface in (DATASET, IMAGE):
        assert outcome.code == 2, outcome.stderr
        assert len(outcome.stderr) == 1 and outcome.stderr[0].startswith("spectrum-attack: error: "), outcome.stderr
    elif interface == SLICER_CLI:
        assert outcome.code == 1, outcome.stderr  # the script's documented error code
        assert len(outcome.stderr) == 1 and outcome.stderr[0].startswith("SpectrumAttackCLI: error: "), outcome.stderr
    else:
        assert outcome.error is not None, "the bad input was accepted"
    assert spec.expect in outcome.message, outcome.message
    assert "Traceback" not in outcome.message
    assert listing(tmp_path) == files_before  # no file, folder or staging folder left behind
    assert hashes(tmp_path) == hashes_before  # inputs (and earlier results) unchanged
    if inputs.marker is not None:
        assert not inputs.marker.exists(), "loading the model ran its code"


# ------------------------------------------------------------------------------------------ late failures
def test_late_failure_in_a_dataset_run_leaves_nothing(good_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Case img0001 is attacked and its files staged; img0002's labels are bad: no output folder appears."""
    inputs = make_inputs(tmp_path, good_model)
    image, labels = ct_like()
    labels[0, 0, 0] = 9
    nib.save(nib.Nifti1Image(image, AFFINE), inputs.data_dir / "imagesTr" / "img0002.nii.gz")
    nib.save(nib.Nifti1Image(labels, AFFINE), inputs.data_dir / "labelsTr" / "label0002.nii.gz")
    split = {"training": [], "validation": [
        {"image": f"imagesTr/img000{n}.nii.gz", "label": f"labelsTr/label000{n}.nii.gz"} for n in (1, 2)]}
    (inputs.data_dir / "split.json").write_text(__import__("json").dumps(split))
    inputs.output = tmp_path / "deep" / "results"
    before = listing(tmp_path)
    outcome = run_spectrum_attack(inputs, capsys, single=False)
    assert outcome.code == 2 and "label0002.nii.gz (case img0002)" in outcome.message, outcome.stderr
    assert listing(tmp_path) == before  # neither results/ nor its missing parent deep/ was created


def test_slicer_cli_batch_names_the_bad_file_and_writes_nothing(good_model: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    inputs = make_inputs(tmp_path, good_model)
    nib.save(nib.Nifti1Image(_with_voxel(np.nan), AFFINE), inputs.data_dir / "imagesTr" / "img0002.nii.gz")
    inputs.batch = True
    before = listing(tmp_path)
    outcome = run_slicer_cli(inputs, capsys)
    assert outcome.code == 1
    assert outcome.stderr == [outcome.stderr[0]] and "inputDirectory file img0002.nii.gz" in outcome.message
    assert listing(tmp_path) == before  # img0001's results were staged, then removed


# ------------------------------------------------------------------------------------------------ good runs
def test_every_output_appears_together(good_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The positive control of the battery: the same inputs unbroken give results on the file interfaces."""
    inputs = make_inputs(tmp_path, good_model)
    assert run_spectrum_attack(inputs, capsys, single=True).code == 0
    assert sorted(p.name for p in inputs.output.iterdir()) == [
        "img0001_adv.nii.gz", "img0001_perturbation.nii.gz", "img0001_pred_adversarial.nii.gz",
        "img0001_pred_clean.nii.gz", "img0001_report.png", "manifest.json", "metrics.csv", "metrics.json"]
    inputs.output = tmp_path / "slicer"
    assert run_slicer_cli(inputs, capsys).code == 0
    assert sorted(p.name for p in inputs.output.iterdir()) == [
        "adv_seg.nii.gz", "adversarial.nrrd", "clean.nii.gz", "metrics.json", "perturbation.nrrd", "return.params"]
    assert not [p for p in tmp_path.rglob(".*")]  # no staging folder left


def test_trusted_bundle_runs_its_code_only_when_asked(tmp_path: Path) -> None:
    from SpectrumAttackLib.models import load_model

    marker = tmp_path / "ran.txt"
    folder = unsafe_bundle(tmp_path / "bundle", marker)
    with pytest.raises(ValueError, match="trust_model_code"):
        load_model(folder, "cpu")
    assert not marker.exists()
    loaded = load_model(folder, "cpu", trust_code=True)
    assert marker.read_text() == "ran" and loaded.entry.num_classes == NUM_CLASSES


def test_mr_like_image_warns_but_runs(good_model: Path, tmp_path: Path) -> None:
    from SpectrumAttackLib.workflows.single import prepare_case

    image, _ = ct_like()
    mr = np.where(image > -500, image + 600.0, 0.0).astype(np.float32)  # no air at -1000: MR-like intensities
    with pytest.warns(UserWarning, match="does not look like the images the model was trained on"):
        case = prepare_case((mr, AFFINE), model=good_model, device="cpu")
    assert case.attack("fgsm", {"eps": 4}).adversarial.shape == mr.shape


def test_torchscript_model_gives_no_spurious_flag_warning(good_model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    import warnings

    inputs = make_inputs(tmp_path, good_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_spectrum_attack(inputs, capsys, single=True).code == 0
    assert not [w for w in caught if "no effect" in str(w.message)], [str(w.message) for w in caught]


# ---------------------------------------------------------------------------------------------------- signals
def _interrupt(command: list[str], root: Path, signum: int) -> subprocess.CompletedProcess:
    """Start ``command``, wait until it has staged output (a hidden ``.partial-`` folder exists), send ``signum``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                               env=environment())
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if any(".partial-" in p.name for p in root.rglob(".*")):
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be interrupted: {process.communicate()}"
    time.sleep(0.3)  # well into the attack
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.slow  # two Python processes importing torch
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_spectrum_attack_leaves_nothing(signum: int, good_model: Path, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, good_model)
    before = listing(tmp_path)
    command = [sys.executable, "-m", "SpectrumAttackLib.cli.main", *shlex.split(
        f"attack --image {inputs.image} --label {inputs.label} --model {good_model} --attack_name pgd --steps 100000 "
        f"--save_adv_images_dir {inputs.output} --device cpu")]
    completed = _interrupt(command, tmp_path, signum)
    assert completed.returncode == 130, completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == "spectrum-attack: interrupted"
    assert "Traceback" not in completed.stderr
    assert listing(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_slicer_cli_leaves_nothing(signum: int, good_model: Path, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, good_model)
    inputs.output.mkdir()
    inputs.attack, inputs.params = "pgd", {"steps": 100000}
    before = listing(tmp_path)
    completed = _interrupt([sys.executable, str(CLI_SCRIPT), *slicer_cli_argv(inputs)], tmp_path, signum)
    assert completed.returncode == 130, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == ["SpectrumAttackCLI: interrupted; no output was written"]
    assert listing(tmp_path) == before


@pytest.mark.parametrize("stated", [2, 5])
def test_probe_refuses_a_channel_mismatch_either_way(stated: int) -> None:
    """More classes stated than the network outputs (metrics silently wrong) and fewer (a late crash), both refused
    by one forward before any attack."""
    from SpectrumAttackLib.models import build_model
    from SpectrumAttackLib.pipeline.probe import probe_model

    net = build_model("unet", NUM_CLASSES, channels=(4, 8), strides=(2,), num_res_units=0).eval()
    probe_model(net, NUM_CLASSES, (16, 16, 16))
    with pytest.raises(ValueError, match=f"must output {stated} channels.*got {NUM_CLASSES}"):
        probe_model(net, stated, (16, 16, 16))


def test_prepared_case_runs_several_attacks_on_one_clean_prediction(good_model: Path, tmp_path: Path) -> None:
    """The per-cell entry point: files in, the clean prediction made once, each attack equal to a one-shot run."""
    from SpectrumAttackLib.workflows.single import attack_single_volume, prepare_case

    inputs = make_inputs(tmp_path, good_model)
    case = prepare_case(inputs.image, model=good_model, reference_labels=inputs.label, device="cpu")
    clean = case.logits_clean
    fgsm = case.attack("fgsm", {"eps": 8}, seed=3)
    pgd = case.attack("pgd", {"eps": 8, "steps": 2}, seed=3)
    assert case.logits_clean is clean  # the clean prediction was not recomputed
    assert not np.array_equal(fgsm.adversarial, pgd.adversarial)
    one_shot = attack_single_volume(inputs.image, model=good_model, attack="pgd", params={"eps": 8, "steps": 2},
                                    reference_labels=inputs.label, device="cpu", seed=3)
    assert one_shot.adversarial.tobytes() == pgd.adversarial.tobytes()
    assert one_shot.seg_adv.tobytes() == pgd.seg_adv.tobytes()


# --------------------------------------------------------------------------------------- D6: no output is an input
def _slicer_cli_output_is_input(how: str) -> Callable[[Inputs], tuple[list[str], str]]:
    """Slicer CLI arguments whose ``outputVolume`` (or ``cleanLabel``) names the input (or the reference label)."""
    def build(inputs: Inputs) -> tuple[list[str], str]:
        inputs.output.mkdir()
        argv = slicer_cli_argv(inputs)
        if how == "same-string":
            target, name, expect = str(inputs.image), "--outputVolume", "outputVolume must not be an input"
        elif how == "dot-segment":
            target = str(inputs.image.parent / "." / inputs.image.name)
            name, expect = "--outputVolume", "outputVolume must not be an input"
        elif how == "hard-link":
            target = str(inputs.root / "linked.nii.gz")
            Path(target).hardlink_to(inputs.image)
            name, expect = "--outputVolume", "outputVolume must not be an input"
        else:  # the clean label written over the reference label, through a symlinked folder
            (inputs.root / "via").symlink_to(inputs.label.parent, target_is_directory=True)
            target = str(inputs.root / "via" / inputs.label.name)
            name, expect = "--cleanLabel", "cleanLabel must not be an input"
        argv[argv.index(name) + 1] = target
        return argv, expect
    return build


@pytest.mark.parametrize("how", ["same-string", "dot-segment", "hard-link", "label-through-symlink"])
def test_slicer_cli_refuses_an_output_that_is_an_input(how: str, good_model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    inputs = make_inputs(tmp_path, good_model)
    argv, expect = _slicer_cli_output_is_input(how)(inputs)
    files_before, hashes_before = listing(tmp_path), hashes(tmp_path)
    capsys.readouterr()
    code = _cli_module().main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("SpectrumAttackCLI: error: "), err
    assert expect in err[0] and "Traceback" not in err[0], err
    assert listing(tmp_path) == files_before and hashes(tmp_path) == hashes_before


def test_attack_image_overwrite_refuses_an_input_named_like_a_result(good_model: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """The image lies in the output folder under a result's name: --overwrite would delete it and write another."""
    inputs = make_inputs(tmp_path, good_model)
    inputs.output.mkdir()
    moved = inputs.output / "ct_adv.nii.gz"
    inputs.image.rename(moved)
    inputs.image = moved
    files_before, hashes_before = listing(tmp_path), hashes(tmp_path)
    argv = ["attack", "--image", str(inputs.image), "--label", str(inputs.label), "--model", str(good_model),
            "--attack_name", "fgsm", "--eps", "4", "--save_adv_images_dir", str(inputs.output),
            "--no_sub_dir_adv_images", "--overwrite", "--device", "cpu"]
    capsys.readouterr()
    code = spectrum_attack(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == (f"spectrum-attack: error: --save_adv_images_dir must not be the folder of an input named like a "
                      f"result, got {str(inputs.output)!r}, where --image would be replaced by a result.")
    assert listing(tmp_path) == files_before and hashes(tmp_path) == hashes_before


@pytest.mark.parametrize("built", ["$list([1, 2])", {"_target_": "collections.OrderedDict"}],
                         ids=["expression", "target"])
def test_trusted_bundle_building_no_network_is_one_line(built: Any, tmp_path: Path) -> None:
    """D9: with --trust_model_code, a network_def that builds something other than an nn.Module."""
    import json

    from SpectrumAttackLib.models import load_model

    folder = unsafe_bundle(tmp_path / "bundle", tmp_path / "unused.txt")
    (folder / "configs" / "inference.json").write_text(json.dumps({"network_def": built}))
    before = hashes(tmp_path)
    with pytest.raises(ValueError) as caught:
        load_model(folder, "cpu", trust_code=True)
    assert str(caught.value) == (f"network_def of bundle {str(folder)!r} must build a torch.nn.Module, got "
                                 f"{'list' if isinstance(built, str) else 'OrderedDict'}.")
    assert hashes(tmp_path) == before


def test_a_folder_given_as_the_image_is_named_as_a_folder(good_model: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """Cosmetic: a folder named like a volume was reported as 'no such file'."""
    inputs = make_inputs(tmp_path, good_model)
    folder = tmp_path / "series.nii.gz"
    folder.mkdir()
    inputs.image = folder
    files_before = listing(tmp_path)
    outcome = run_spectrum_attack(inputs, capsys, single=True)
    assert outcome.code == 2 and outcome.stderr == [
        f"spectrum-attack: error: --image must be a volume file, got {str(folder)!r} (a folder)."]
    outcome = run_slicer_cli(inputs, capsys)
    assert outcome.code == 1 and outcome.stderr == [
        f"SpectrumAttackCLI: error: inputVolume must be a volume file, got {str(folder)!r} (a folder)."]
    assert listing(tmp_path) == files_before


@pytest.mark.slow  # a Python process importing torch
def test_slicer_cli_prints_the_modality_warning_as_one_line(good_model: Path, tmp_path: Path) -> None:
    """Cosmetic: the warning came out as a raw ``UserWarning`` with the engine's file and line."""
    inputs = make_inputs(tmp_path, good_model)
    image, _ = ct_like()
    nib.save(nib.Nifti1Image(np.where(image > -500, image + 600.0, 0.0).astype(np.float32), AFFINE), inputs.image)
    inputs.output.mkdir()
    completed = subprocess.run([sys.executable, str(CLI_SCRIPT), *slicer_cli_argv(inputs)], capture_output=True,
                               text=True, env=environment(), timeout=240)
    assert completed.returncode == 0, completed.stderr
    warning = [line for line in completed.stderr.splitlines() if "does not look like" in line]
    assert len(warning) == 1 and warning[0].startswith("SpectrumAttackCLI: warning: inputVolume does not look like")
    assert "UserWarning" not in completed.stderr and ".py:" not in completed.stderr
