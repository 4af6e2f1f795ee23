"""``spectrum-attack analyze``: the frequency analysis of one attack on one image.

Attacks ``--image`` (optionally with ``--label``) with ``--attack_name`` and its flags through the single-volume
pipeline (as ``demo``), then keeps only the low / only the high block-DCT frequencies of the perturbation at the
attacks' bands and at each radial cut-off, and scores each filtered image
(:func:`SpectrumAttackLib.analysis.frequency.frequency_analysis`). Writes into ``--output`` (staged):
``frequency.json`` (Dice per kept band next to the perturbation's energy share) and ``frequency.png``; the case
report ``report.png`` (slices, perturbation, spectrum, per-organ Dice: the figure ``attack`` and ``demo`` write) and
``metrics.json``; ``report.html``, the case page showing both figures with their numbers
(:mod:`SpectrumAttackLib.report.case_html`); and ``manifest.json``.

Example::

    spectrum-attack analyze --image ct.nii.gz --label seg.nii.gz --model unet-btcv-3mm --attack_name pgd --eps 4 \\
        --output pgd-frequency
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from SpectrumAttackLib.cli.args import ATTACK_FLAGS, MODEL_FLAGS, add_flags
from SpectrumAttackLib.cli.converters import attack_params_from_args, model_from_args

__all__ = ["add_parser", "run"]

#: the only flags of the tables this subcommand lists and reads.
USED_FLAGS = {*ATTACK_FLAGS, *MODEL_FLAGS, "attack_name", "image", "label", "infer_overlap", "attack_mode",
              "tile_batch_size", "overwrite", "precision", "seed"}
RESULTS = ("frequency.json", "frequency.png", "report.png", "metrics.json", "report.html", "manifest.json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``analyze`` subcommand (the model and attack flags of ``attack``, plus its own)."""
    parser = subparsers.add_parser(
        "analyze", help="frequency analysis of an attack: Dice with only low / only high DCT frequencies kept",
        description="Attack --image, then score the image with only some block-DCT frequencies of the perturbation "
        "kept (bands low/middle/high and a radial low/high-pass sweep), next to the perturbation's energy per band.")
    own = parser.add_argument_group("analyze")
    own.add_argument("--output", required=True, help="folder for frequency.json, frequency.png, the case report "
                     "(report.png, metrics.json, report.html) and manifest.json")
    own.add_argument("--analysis_block_size", type=int, default=8, help="edge of the analysis' DCT blocks (voxels)")
    own.add_argument("--cutoffs", type=float, nargs="+", default=None,
                     help="normalised radius cut-offs of the radial sweep, each in (0, 1) (default 0.1 0.2 0.35 0.5 "
                     "0.75)")
    add_flags(parser, USED_FLAGS)


def run(args: argparse.Namespace) -> int:
    """Run the attack and the analysis; write the results and print the table. Returns 0."""
    from SpectrumAttackLib.analysis.frequency import CUTOFFS, analyze_attack
    from SpectrumAttackLib.cli.input_grid import write_model_grid_report
    from SpectrumAttackLib.io.volumes import read_volume
    from SpectrumAttackLib.pipeline.staging import StagedOutput
    from SpectrumAttackLib.report.case_html import write_case_page
    from SpectrumAttackLib.report.frequency_figure import write_frequency_figure
    from SpectrumAttackLib.report.jsonable import dump_json
    from SpectrumAttackLib.report.manifest import write_manifest
    from SpectrumAttackLib.runtime import resolve_device
    from SpectrumAttackLib.workflows.single import prepare_case

    start = time.perf_counter()
    if not args.image:
        raise ValueError("--image must be a NIfTI or NRRD image, got None.")
    name, params = attack_params_from_args(args)
    params.pop("seed", None)
    labels = read_volume(args.label, name="--label").array if args.label else None
    loaded = model_from_args(args, resolve_device(args.device), nnunet_allowed=True)
    case = prepare_case(args.image, model=loaded, reference_labels=labels, overlap=args.infer_overlap,
                        precision=args.precision, image_name="--image", labels_name="--label")
    out = StagedOutput(args.output, "--output", args.overwrite, RESULTS)
    try:
        result = case.attack(name, params, seed=args.seed, attack_mode=args.attack_mode,
                             tile_batch_size=args.tile_batch_size)
        analysis = analyze_attack(case, result, block_size=args.analysis_block_size,
                                  cutoffs=tuple(args.cutoffs or CUTOFFS))
        analysis.update(attack=name, attack_config=result.attack_config, model=loaded.entry.name)
        dump_json(out.path("frequency.json"), analysis)
        title = f"{Path(args.image).name}: {name} on {loaded.entry.name}"
        write_frequency_figure(out.path("frequency.png"), analysis, f"{title}: frequency analysis of the perturbation")
        write_model_grid_report(out.path("report.png"), result, params.get("block_size"), title)
        dump_json(out.path("metrics.json"), result.metrics)
        write_case_page(out.path("report.html"), title=title, metrics=result.metrics, analysis=analysis,
                        case_png="report.png", frequency_png="frequency.png",
                        facts={"image": args.image, "labels": args.label or "none (the clean prediction)",
                               "model": loaded.entry.name, "attack": name,
                               "attack parameters": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
                               "seed": args.seed, "analysis block": "x".join(map(str, analysis["block_size"]))})
        write_manifest(out.staging, command="analyze", arguments=vars(args), seed=args.seed,
                       extra={"seconds": time.perf_counter() - start})
        folder = out.commit()
    except BaseException:
        out.discard()
        raise
    print(format_analysis(analysis))
    print(f"results written to {folder}")
    return 0


def format_analysis(analysis: dict[str, Any]) -> str:
    """The bands and the radial sweep as a small table."""
    lines = [f"clean Dice {analysis['clean_dice']:.3f}, adversarial Dice {analysis['adversarial_dice']:.3f}",
             f"{'band kept':<12} {'energy':>7} {'Dice':>7}"]
    lines += [f"{b['band']:<12} {b['energy']:>7.3f} {b['dice']:>7.3f}" for b in analysis["bands"]]
    lines.append(f"{'cut-off':<8} {'low energy':>10} {'low Dice':>9} {'high energy':>11} {'high Dice':>10}")
    lines += [f"{r['cutoff']:<8.2f} {r['low_energy']:>10.3f} {r['low_dice']:>9.3f} {r['high_energy']:>11.3f} "
              f"{r['high_dice']:>10.3f}" for r in analysis["radial"]]
    return "\n".join(lines)
