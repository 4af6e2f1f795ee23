#!/usr/bin/env python-real
"""SpectrumAttack CLI module: attack one volume (or a folder of volumes) and write the results.

Slicer runs it in the background for the SpectrumAttack module (``slicer.cli.run``), with the parameters of
``SpectrumAttackCLI.xml``: input and output volumes (temporary NRRD files), label images, the attack settings and
``--returnparameterfile`` for the output scalars. Every image is a flagged parameter, so the CLI panel may leave
the volumes empty and run a batch on two folders instead (Slicer emits a flagged image only when a node is set).
Progress goes to stdout as ``<filter-progress>`` lines (fraction 0–1) plus one
``SpectrumAttack step <done>/<total> <stage>`` line per report, which the module reads for its step counter and
ETA. It also runs outside Slicer::

    python SpectrumAttackCLI/SpectrumAttackCLI.py --inputVolume ct.nrrd --outputVolume adversarial.nrrd \\
        --model unet-btcv-3mm --attack saa --steps 20 --rho 0.2 --blockSize 32,32,32 --cleanLabel clean.nrrd \\
        --adversarialLabel adv.nrrd
    python SpectrumAttackCLI/SpectrumAttackCLI.py --inputDirectory cts/ --outputDirectory attacked/ --attack pgd

Every input is checked with the engine's checks (:mod:`SpectrumAttackLib.pipeline.validate`) and every output path
before the attack starts; all outputs (volumes, metrics, ``--returnparameterfile``; in batch mode the whole folder)
are staged and moved into place together once the run succeeds (:mod:`SpectrumAttackLib.pipeline.staging`), so a
failed or interrupted (Ctrl+C, SIGTERM) run leaves no output behind; a run killed outright (SIGKILL) leaves
no output file either, only a hidden ``.spectrumattack.partial-*`` folder beside them. Exit codes: 0 success, 1 error
(one line ``SpectrumAttackCLI: error: <message>`` on stderr, no traceback), 2 bad command line, 130 interrupted.
In batch mode a folder that already holds results is refused, and a bad file is named in the message.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # Slicer 5.8 (Python 3.9) lists the CLI module too: one line, no traceback
    sys.stderr.write("SpectrumAttackCLI: error: SpectrumAttack needs 3D Slicer 5.10 or later (Python 3.12); this "
                     "Slicer runs Python " + sys.version.split()[0] + ".\n")
    sys.exit(1)

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def _import_paths() -> None:
    """Make ``SpectrumAttackLib`` and ``SpectrumAttackAdapter`` importable from a source checkout.

    Installed extensions have both in ``qt-scripted-modules``, which Slicer puts on the CLI's ``PYTHONPATH``; in
    a source tree they live in the repository root and in ``SpectrumAttack/``.
    """
    folders = {"SpectrumAttackLib": _HERE.parent, "SpectrumAttackAdapter": _HERE.parent / "SpectrumAttack"}
    for name, folder in folders.items():
        try:
            __import__(name)
        except ImportError:
            sys.path.insert(0, str(folder))


def _float_text(value: float) -> str:
    return "nan" if math.isnan(value) else repr(float(value))


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``SpectrumAttackCLI.xml``: one argument per XML parameter, same names and defaults.

    The attack parameters, the device and the seed are the rows of ``SpectrumAttackLib.attacks.parameters`` that
    have a Slicer name; their values stay as given (strings) for the one conversion in ``engine_arguments``.
    """
    _import_paths()
    from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS
    from SpectrumAttackLib.models.catalogue import ARCHITECTURES

    parser = argparse.ArgumentParser(prog="SpectrumAttackCLI", description=__doc__.splitlines()[0])
    parser.add_argument("--xml", action="store_true", help="print the SlicerExecutionModel descriptor and exit")
    parser.add_argument("--returnparameterfile", help="file receiving the output scalars (written by Slicer's CLI)")
    parser.add_argument("--inputVolume", help="volume to attack (.nrrd, .nii, .nii.gz)")
    parser.add_argument("--outputVolume", help="adversarial volume to write")
    parser.add_argument("--referenceLabel", help="ground-truth class ids on the input's grid")
    parser.add_argument("--cleanLabel", help="clean prediction to write")
    parser.add_argument("--adversarialLabel", help="adversarial prediction to write")
    parser.add_argument("--perturbation", help="perturbation volume to write")
    parser.add_argument("--metricsFile", help="JSON file receiving all metrics")
    parser.add_argument("--model", default="unet-btcv-3mm", help="catalogue name or model path")
    parser.add_argument("--architecture", default="none", choices=("none", *ARCHITECTURES))
    parser.add_argument("--numClasses", type=int, default=0, help="classes of a checkpoint given by path")
    parser.add_argument("--attack", default="saa", help="attack name (saa, vafa-3d, pgd, ...)")
    for row in SLICER_PARAMETERS:  # attack parameters, device and seed: the engine's table
        if row.kind == "bool":  # Slicer passes a boolean as the bare flag, and only when true
            parser.add_argument(f"--{row.slicer}", action="store_true", help=row.help)
        else:  # kept as given; engine_arguments converts every value once
            parser.add_argument(f"--{row.slicer}", default=row.default, help=f"{row.help} (default: {row.default})")
    parser.add_argument("--inputDirectory", help="batch mode: folder of volumes to attack")
    parser.add_argument("--outputDirectory", help="batch mode: folder receiving the results")
    return parser


def _engine_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of the command line by Slicer name, as ``engine_arguments`` takes them (unconverted)."""
    from SpectrumAttackAdapter.arguments import MODEL_SETTINGS

    from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS

    values = {name: getattr(args, name) for name in MODEL_SETTINGS if hasattr(args, name)}
    values["architecture"] = None if args.architecture == "none" else args.architecture
    values.update({row.slicer: getattr(args, row.slicer) for row in SLICER_PARAMETERS})
    return values


def _metrics_document(result: Any) -> dict[str, Any]:
    from SpectrumAttackLib.report.jsonable import to_jsonable

    return to_jsonable({"metrics": result.metrics, "classes": result.classes, "attack_config": result.attack_config,
                        "seconds": result.seconds})


def _attack_file(arguments: Any, source: str, reference: str | None, staged: Any, names: dict[str, str],
                 reporter: Any, image_name: str) -> Any:
    """Attack one file and write the requested outputs into ``staged`` (moved into place by the caller).

    Args:
        staged: ``StagedFiles`` or ``StagedOutput``; ``names`` maps result keys to its output names.
        image_name: the parameter named in messages about this image (``inputVolume``, ``inputDirectory file x``).
    """
    import numpy as np
    from SpectrumAttackAdapter.arguments import run_engine

    from SpectrumAttackLib.io.volumes import read_volume, write_volume
    from SpectrumAttackLib.pipeline.validate import read_image

    volume = read_image(source, image_name)
    labels = None if reference is None else read_volume(reference, name="referenceLabel").array
    result = run_engine(arguments, volume.array, volume.affine, reference_labels=labels, progress=reporter,
                        image_name=image_name, labels_name="referenceLabel")
    for key, array, dtype in (
        ("adversarial", result.adversarial, np.float32),
        ("perturbation", result.perturbation, np.float32),
        ("seg_clean", result.seg_clean, result.seg_clean.dtype),
        ("seg_adv", result.seg_adv, result.seg_adv.dtype),
    ):
        if key in names:
            write_volume(staged.path(names[key]), array, volume.affine, dtype=dtype)
    if "metrics" in names:
        staged.path(names["metrics"]).write_text(json.dumps(_metrics_document(result), indent=2, allow_nan=False),
                                                 encoding="utf-8")
    return result


def _return_parameters(scalars: dict[str, float]) -> str:
    return "".join(f"{k} = {_float_text(v)}\n" for k, v in scalars.items())


def _run_single(args: argparse.Namespace, arguments: Any) -> None:
    from SpectrumAttackAdapter.arguments import summary_scalars
    from SpectrumAttackAdapter.cli_output import Reporter, announce_staging

    from SpectrumAttackLib.pipeline.staging import StagedFiles

    outputs = {"outputVolume": args.outputVolume, "perturbation": args.perturbation, "cleanLabel": args.cleanLabel,
               "adversarialLabel": args.adversarialLabel, "metricsFile": args.metricsFile,
               "returnparameterfile": args.returnparameterfile}
    keys = {"adversarial": "outputVolume", "perturbation": "perturbation", "seg_clean": "cleanLabel",
            "seg_adv": "adversarialLabel", "metrics": "metricsFile"}
    inputs = {"inputVolume": args.inputVolume, "referenceLabel": args.referenceLabel, "model": args.model}
    with StagedFiles(outputs, inputs) as staged:  # every output path is checked before the attack starts
        announce_staging(staged.staging_folders)
        names = {key: name for key, name in keys.items() if name in staged}
        result = _attack_file(arguments, args.inputVolume, args.referenceLabel, staged, names, Reporter(),
                              "inputVolume")
        if "returnparameterfile" in staged:
            staged.path("returnparameterfile").write_text(
                _return_parameters(summary_scalars(result.metrics, result.seconds)), encoding="utf-8")
        staged.commit()


def _run_folder(args: argparse.Namespace, arguments: Any) -> None:
    from SpectrumAttackAdapter.arguments import summary_scalars
    from SpectrumAttackAdapter.cli_output import Reporter, announce_staging

    from SpectrumAttackLib.io.volumes import SUFFIXES
    from SpectrumAttackLib.pipeline.staging import SLICER_BATCH_RESULTS, StagedFiles, StagedOutput

    folder = Path(args.inputDirectory)
    if not folder.is_dir():
        raise ValueError(f"inputDirectory must be an existing folder, got {args.inputDirectory!r}.")
    suffixes = tuple(SUFFIXES)
    cases = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(suffixes))
    if not cases:
        raise ValueError(f"inputDirectory must contain .nii, .nii.gz or .nrrd volumes, got none in {str(folder)!r}.")
    inputs = {f"inputDirectory file {p.name!r}": p for p in cases}
    with StagedOutput(args.outputDirectory, "outputDirectory", False, SLICER_BATCH_RESULTS,
                      overwrite_flag=None, inputs=inputs) as out, \
            StagedFiles({"returnparameterfile": args.returnparameterfile}, {**inputs, "model": args.model}) \
            as returned:
        announce_staging([*out.staging_folders, *returned.staging_folders])
        rows = []
        for index, path in enumerate(cases):
            case = path.name[: -len(next(s for s in suffixes if path.name.lower().endswith(s)))]
            print(f"<filter-comment>{case}</filter-comment>", flush=True)
            names = {key: f"{case}_{suffix}" for key, suffix in (
                ("adversarial", "adversarial.nii.gz"), ("perturbation", "perturbation.nii.gz"),
                ("seg_clean", "seg_clean.nii.gz"), ("seg_adv", "seg_adversarial.nii.gz"),
                ("metrics", "metrics.json"))}
            result = _attack_file(arguments, str(path), None, out, names, Reporter(index, len(cases)),
                                  f"inputDirectory file {path.name}")
            rows.append({"case": case, **summary_scalars(result.metrics, result.seconds)})
        columns = list(rows[0])
        lines = [",".join(columns)] + [",".join(r["case"] if c == "case" else _float_text(r[c]) for c in columns)
                                       for r in rows]
        out.path("metrics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        means = {c: sum(r[c] for r in rows) / len(rows) for c in columns if c != "case"}
        if "returnparameterfile" in returned:
            returned.path("returnparameterfile").write_text(_return_parameters(means), encoding="utf-8")
        out.commit()
        returned.commit()


#: exit codes: success, an error (one line on stderr), a bad command line (argparse), interrupted (SIGINT/SIGTERM).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_ERRORS = (ValueError, FileNotFoundError, RuntimeError, NotImplementedError, PermissionError, TypeError)


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    return f"SpectrumAttackCLI: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code: 0 success, 1 error (one line ``SpectrumAttackCLI: error: ...`` on stderr,
    no traceback, no output written), 2 bad command line, 130 interrupted (SIGINT or SIGTERM; nothing written)."""
    parser = build_parser()
    from SpectrumAttackAdapter.cli_output import utf8_console

    utf8_console()
    args = parser.parse_args(argv)
    if args.xml:
        sys.stdout.write((_HERE / "SpectrumAttackCLI.xml").read_text(encoding="utf-8"))
        return EXIT_OK
    batch = bool(args.inputDirectory or args.outputDirectory)
    if batch and not (args.inputDirectory and args.outputDirectory):
        parser.error("--inputDirectory and --outputDirectory go together (batch mode).")
    if batch and (args.inputVolume or args.outputVolume):
        parser.error("give --inputVolume and --outputVolume (one volume) or --inputDirectory and --outputDirectory "
                     "(batch mode), not both.")
    single_only = [name for name in ("referenceLabel", "cleanLabel", "adversarialLabel", "perturbation", "metricsFile")
                   if getattr(args, name)]
    if batch and single_only:
        parser.error(f"--{single_only[0]} belongs to a single-volume run; batch mode (--inputDirectory) writes every "
                     "case's segmentations, perturbation and metrics into --outputDirectory itself.")
    if not batch and not (args.inputVolume and args.outputVolume):
        parser.error("--inputVolume and --outputVolume are required (or --inputDirectory and --outputDirectory).")
    _import_paths()
    from SpectrumAttackAdapter.arguments import engine_arguments

    from SpectrumAttackLib.pipeline.signals import terminate_as_interrupt

    print("<filter-start><filter-name>SpectrumAttack</filter-name>"
          f"<filter-comment>{args.attack} on {args.model}</filter-comment></filter-start>", flush=True)
    previous_format = warnings.formatwarning
    warnings.formatwarning = _format_warning  # one line for the user, not the file and line of the engine
    try:
        with terminate_as_interrupt():
            arguments = engine_arguments(_engine_values(args), strict=False)
            if batch:
                _run_folder(args, arguments)
            else:
                _run_single(args, arguments)
    except _ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"SpectrumAttackCLI: error: {message}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("SpectrumAttackCLI: interrupted; no output was written", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        warnings.formatwarning = previous_format
    print("<filter-end><filter-name>SpectrumAttack</filter-name></filter-end>", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
