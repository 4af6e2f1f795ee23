#!/usr/bin/env python-real
"""SpectrumAttack Robustness CLI module: audit models, or harden one (adversarial fine-tuning), on a split file.

Slicer runs it in the background for the SpectrumAttack module's Audit and Harden sections (``slicer.cli.run``),
with the parameters of ``SpectrumAttackRobustnessCLI.xml``; it also runs on your own dataset outside Slicer::

    python SpectrumAttackRobustnessCLI/SpectrumAttackRobustnessCLI.py --job audit --data dataset.json \\
        --models "unet-btcv-3mm;hardened/" --grid quick --outputDirectory audit/
    python SpectrumAttackRobustnessCLI/SpectrumAttackRobustnessCLI.py --job harden --data dataset.json \\
        --models unet-btcv-3mm --mode vaft --attack vafa-3d --iterations 200 --outputDirectory hardened/ \\
        --comparisonFile comparison.json

The work is :mod:`SpectrumAttackAdapter.robustness_run` and :mod:`SpectrumAttackAdapter.harden_job`, the calls the
module makes in-process with ``wait=True``. Progress goes to stdout as ``<filter-progress>`` lines plus one
``SpectrumAttack step <done>/<total> <stage> <message>`` line per report (audit cells; training iterations with
loss, validation Dice and ETA). Outputs are staged: the output folder appears whole or not at all, and the staging
folders are announced (``SpectrumAttack staging <folder>``) so that the module removes them when it kills the
process. Exit codes: 0 success, 1 error (one line ``SpectrumAttackRobustnessCLI: error: <message>``), 2 bad
command line, 130 interrupted.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # Slicer 5.8 (Python 3.9) lists the CLI module too: one line, no traceback
    sys.stderr.write("SpectrumAttackRobustnessCLI: error: SpectrumAttack needs 3D Slicer 5.10 or later (Python "
                     "3.12); this Slicer runs Python " + sys.version.split()[0] + ".\n")
    sys.exit(1)

import argparse
import json
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_NAME = "SpectrumAttackRobustnessCLI"


def _import_paths() -> None:
    """Make ``SpectrumAttackLib`` and ``SpectrumAttackAdapter`` importable from a source checkout (installed
    extensions have both in ``qt-scripted-modules``, on the CLI's ``PYTHONPATH``)."""
    folders = {"SpectrumAttackLib": _HERE.parent, "SpectrumAttackAdapter": _HERE.parent / "SpectrumAttack"}
    for name, folder in folders.items():
        try:
            __import__(name)
        except ImportError:
            sys.path.insert(0, str(folder))


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``SpectrumAttackRobustnessCLI.xml``: one argument per XML parameter, same defaults."""
    import xml.etree.ElementTree as ET

    parser = argparse.ArgumentParser(prog=_NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--xml", action="store_true", help="print the SlicerExecutionModel descriptor and exit")
    parser.add_argument("--returnparameterfile", help="(written by Slicer's CLI; this module returns no scalars)")
    root = ET.parse(_HERE / f"{_NAME}.xml").getroot()
    for group in root.iter("parameters"):
        for element in group:
            name = element.findtext("name")
            if name:
                parser.add_argument(f"--{name}", default=element.findtext("default"),
                                    help=element.findtext("description"))
    return parser


def _audit(args: argparse.Namespace, reporter: Any) -> None:
    from SpectrumAttackAdapter.cli_output import announce_staging
    from SpectrumAttackAdapter.robustness_run import dataset_pairs, load_models, read_models, run_audit

    output = Path(args.outputDirectory)
    announce_staging([output.parent / f".{output.name}.audit-partial"])
    run_audit(dataset_pairs(args.data, args.dataKey), load_models(read_models(args.models), args.device), args.grid,
              output=output, device=args.device, precision=args.precision, seed=int(args.seed),
              metrics_preset=args.metricsPreset, progress=reporter)


def _harden(args: argparse.Namespace, reporter: Any) -> None:
    from SpectrumAttackAdapter.cli_output import announce_staging
    from SpectrumAttackAdapter.harden_job import run_harden_files
    from SpectrumAttackAdapter.robustness_run import read_models

    from SpectrumAttackLib.pipeline.staging import StagedFiles
    from SpectrumAttackLib.report.jsonable import to_jsonable

    try:
        params = json.loads(args.attackParameters) if (args.attackParameters or "").strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"attackParameters must be a JSON object, got {args.attackParameters!r} ({error}).") from None
    if not isinstance(params, dict):
        raise ValueError(f"attackParameters must be a JSON object, got {args.attackParameters!r}.")
    try:
        iterations = int(args.iterations)
    except ValueError:
        raise ValueError(f"iterations must be an integer ≥ 1, got {args.iterations!r}.") from None
    output = Path(args.outputDirectory).expanduser().absolute()
    with StagedFiles({"comparisonFile": args.comparisonFile}) as staged:
        announce_staging(staged.staging_folders)
        print(f"SpectrumAttack staging-pattern {output.parent / ('.' + output.name + '.partial-')}", flush=True)
        result, comparison = run_harden_files(
            Path(args.data), read_models(args.models)[0], mode=args.mode, attack=args.attack, params=params,
            iterations=iterations, output=output, grid=args.grid, device=args.device, precision=args.precision,
            seed=int(args.seed), progress=reporter, should_stop=None)
        if "comparisonFile" in staged:
            document = {"model_path": str(result.model_path), "model_kind": result.model_kind,
                        "history": result.history, "comparison": comparison}
            staged.path("comparisonFile").write_text(json.dumps(to_jsonable(document), indent=1), encoding="utf-8")
        staged.commit()


#: exit codes: success, an error (one line on stderr), a bad command line (argparse), interrupted (SIGINT/SIGTERM).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_ERRORS = (ValueError, FileNotFoundError, RuntimeError, NotImplementedError, PermissionError, TypeError)


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the exit code (see the module docstring)."""
    _import_paths()
    from SpectrumAttackAdapter.cli_output import Reporter, utf8_console

    utf8_console()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.xml:
        sys.stdout.write((_HERE / f"{_NAME}.xml").read_text(encoding="utf-8"))
        return EXIT_OK
    if args.job not in ("audit", "harden"):
        parser.error(f"--job must be audit or harden, got {args.job!r}.")
    missing = [f"--{name}" for name in ("data", "outputDirectory") if not getattr(args, name)]
    if missing:
        parser.error(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required.")
    from SpectrumAttackLib.inference.tiles import Cancelled
    from SpectrumAttackLib.pipeline.signals import terminate_as_interrupt

    print(f"<filter-start><filter-name>{_NAME}</filter-name><filter-comment>{args.job}</filter-comment>"
          "</filter-start>", flush=True)
    try:
        with terminate_as_interrupt():
            (_audit if args.job == "audit" else _harden)(args, Reporter())
    except _ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"{_NAME}: error: {message}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except (KeyboardInterrupt, Cancelled):
        print(f"{_NAME}: interrupted; no output was written", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    print(f"<filter-end><filter-name>{_NAME}</filter-name></filter-end>", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
