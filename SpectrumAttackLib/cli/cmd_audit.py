"""``spectrum-attack audit``: how robust is my segmentation model? Every attack family over a budget sweep.

Runs :func:`SpectrumAttackLib.workflows.audit` on the cases of a split (``--data_dir``/``--json_list``,
validation unless ``--gen_train_adv_mode``) or on one image (``--image CT.nii.gz [--label SEG.nii.gz]``, NIfTI or
NRRD), read, checked and preprocessed by the case pipeline exactly as ``attack`` does, for one model (the usual
model flags) or several (``--models A B ...``: catalogue names, model files or ``ARCHITECTURE=CHECKPOINT``),
over the grid of ``--preset quick|standard|paper|sea`` or ``--grid FILE`` (YAML/JSON, see
:mod:`SpectrumAttackLib.audit.grid`). ``--corruptions all|none|NAME ...`` sets the corruption track (scanner
artefacts at severities 1–5, :mod:`SpectrumAttackLib.corruptions`; the ``standard`` preset runs all of them) and
``--corruption_modality`` its noise units (``auto``: HU when the model's window is in HU). ``--ssim_levels 0.99 0.97
0.95`` also drives every family to each 3-D SSIM per case (``attacks.at_ssim``) and compares them at equal SSIM;
``--steps`` overrides the grid's steps (the ``sea`` preset's 300 on a CPU, for example).

Writes into ``--output`` (staged, moved into place at the end; refused when it holds results unless ``--overwrite``
or ``--resume``): ``audit.csv``, ``audit.json``, ``curves.png``, ``report.html`` and ``manifest.json``. An
interrupted audit keeps its finished cells in ``.<output>.audit-partial`` beside the folder; ``--resume``
continues it without redoing them. Under ``torchrun`` the cells are shared out over the ranks and rank 0 writes
the report.

Example::

    spectrum-attack audit --image ct.nii.gz --label seg.nii.gz --models unet-btcv-3mm vaft.pt \\
        --model_name unet --preset standard --output audit-out
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SpectrumAttackLib.cli.args import MODEL_FLAGS, PREPROCESSING_FLAGS, add_flags, check_choices, flag_given
from SpectrumAttackLib.cli.converters import data_config_from_args, model_from_args

if TYPE_CHECKING:
    from SpectrumAttackLib.distributed import DistContext

__all__ = ["USED_FLAGS", "add_parser", "format_audit_summary", "run"]

#: the only flags of the tables this subcommand lists and reads (the attacks and their budgets come from the grid).
USED_FLAGS = {
    *PREPROCESSING_FLAGS, *MODEL_FLAGS, "image", "label", "infer_overlap", "sw_batch_size", "attack_mode",
    "tile_batch_size", "overwrite", "metrics_preset", "precision", "gen_val_adv_mode", "gen_train_adv_mode",
    "resume", "seed", "distributed", "world_size", "rank", "dist_url", "dist_backend", "steps",
}
PRESET_NAMES = ("quick", "standard", "paper", "sea")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``audit`` subcommand: the model and preprocessing flags of ``attack`` that act in an audit, and
    the audit's own (``--help`` lists nothing else)."""
    parser = subparsers.add_parser(
        "audit",
        help="robustness audit: every attack over a budget sweep, robust Dice at equal SSIM, curves and a report",
        description="Attack the cases (a split, or --image) on each model with every attack of the grid at every "
        "budget; write audit.csv, audit.json, curves.png and report.html (worst-case robust Dice at SSIM >= "
        "0.99/0.95/0.90, half-clean-Dice budget and area under Dice-vs-budget per attack).",
    )
    own = parser.add_argument_group("audit")
    own.add_argument("--output", required=True, help="folder for the audit's results")
    own.add_argument("--models", nargs="+", metavar="MODEL", default=None,
                     help="audit several models on the same cases: catalogue names, model files or "
                     "ARCHITECTURE=CHECKPOINT (default: the one model of --model / --model_name)")
    own.add_argument("--preset", default=None, help=f"grid preset: {', '.join(PRESET_NAMES)} (default: quick)")
    own.add_argument("--grid", default=None, help="grid file (YAML or JSON) instead of --preset")
    own.add_argument("--corruptions", nargs="+", metavar="NAME", default=None,
                     help="corruption track: 'all', 'none' or corruption names (each at severities 1-5), replacing "
                     "the grid's (the standard preset runs all)")
    own.add_argument("--frequency_analysis", action="store_true",
                     help="also score each attack cell with only the low / middle / high DCT band of its perturbation "
                     "kept (Dice and energy per band in audit.json and report.html)")
    own.add_argument("--corruption_modality", default="auto",
                     help="noise units of the corruptions: 'ct' (sigma in HU), 'mr' (fraction of the window) or "
                     "'auto' (CT when the model's window is in HU)")
    own.add_argument("--ssim_levels", nargs="+", type=float, default=None, metavar="SSIM",
                     help="also drive every attack family with a strength knob to each of these 3-D SSIMs per case "
                     "(e.g. 0.99 0.97 0.95) and compare them at equal SSIM")
    add_flags(parser, USED_FLAGS)
    for action in parser._actions:
        if action.dest == "steps":
            action.help = "steps of every attack of the grid that takes steps (default: the grid's; sea: 300)"
        if action.dest == "resume":
            action.help = "continue an interrupted audit in --output without redoing its finished cells"
        if action.dest == "metrics_preset":
            action.help = "'clinical' (foreground Dice, HD95 in mm, 3-D SSIM; the audit's default) or 'paper'"
    parser.set_defaults(metrics_preset="clinical")


def run(args: argparse.Namespace) -> int:
    """Run the audit (every process of a distributed run); rank 0 prints the summary. Returns 0."""
    from SpectrumAttackLib.distributed import launch

    return launch(_audit, args)


def _models(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    from SpectrumAttackLib.cli.cmd_transfer import parse_model_item

    if not args.models:
        loaded = model_from_args(args, device, nnunet_allowed=True)
        return {loaded.entry.name: loaded}
    models: dict[str, Any] = {}
    for item in args.models:
        loaded = model_from_args(args, device, *parse_model_item(item), nnunet_allowed=True)
        label = loaded.entry.name if loaded.entry.name not in models else item
        if label in models:
            raise ValueError(f"--models must name each model once, got {item!r} twice.")
        models[label] = loaded
    return models


def _cases(args: argparse.Namespace, cfg: Any, num_classes: int) -> list:
    """The cases of the split, or of ``--image``/``--label``, through the case pipeline (loaded when needed)."""
    from SpectrumAttackLib.audit.identity import files_digest
    from SpectrumAttackLib.audit.runner import CaseSource
    from SpectrumAttackLib.cli.cases import load_split
    from SpectrumAttackLib.pipeline.case import Case, case_name, case_transform

    entries = load_split(args)
    transform = case_transform(cfg, entries)
    window = (cfg.a_min, cfg.a_max)
    sources = []
    for entry in entries:
        images = [entry["image"]] if isinstance(entry["image"], str) else list(entry["image"])
        sources.append(CaseSource(name=case_name(images[0]), source=str(Path(images[0]).absolute()),
                                  load=lambda e=entry: Case.from_transforms(transform, e, num_classes, window),
                                  content=files_digest([*images, entry.get("label")])))
    return sources


def _nnunet_cases(args: argparse.Namespace, first: Any) -> list:
    """The cases of the split, or of ``--image``/``--label``, mapped by nnU-Net's own preprocessing (nnU-Net
    models: the plans set spacing and intensities, so the MONAI preprocessing flags are refused)."""
    from SpectrumAttackLib.cli.cases import load_split
    from SpectrumAttackLib.pipeline.case import case_name
    from SpectrumAttackLib.pipeline.validate import read_image
    from SpectrumAttackLib.workflows.robustness import case_grid, volume_case

    given = [f for f in ("a_min", "a_max", "b_min", "b_max", "space_x", "space_y", "space_z", "roi_x", "roi_y",
                         "roi_z") if flag_given(args, f)]
    if given:
        raise ValueError(f"--{given[0]} applies to MONAI models only (an nnU-Net model's plans set its spacing, "
                         f"intensities and patch), got it with --model {args.model or args.models[0]!r}.")
    grid = case_grid(first)
    cases = []
    for entry in load_split(args):
        image = entry["image"] if isinstance(entry["image"], str) else entry["image"][0]
        name = case_name(image)
        volume = read_image(image, entry.get("image_param") or f"--data_dir image {Path(image).name}")
        cases.append(volume_case(volume, entry.get("label"), preprocessing=grid, name=name,
                                 source=str(Path(image).absolute())))
    return cases


def _audit(args: argparse.Namespace, ctx: DistContext) -> int:
    import dataclasses

    from SpectrumAttackLib.audit.grid import resolve_grid
    from SpectrumAttackLib.checks import check_choice
    from SpectrumAttackLib.models.catalogue import Preprocessing
    from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
    from SpectrumAttackLib.workflows.robustness import audit

    check_choices(args)
    if args.grid is not None and args.preset is not None:
        raise ValueError(f"--grid must not be combined with --preset, got --preset {args.preset!r} and a grid file.")
    if args.grid is not None and Path(args.grid).suffix.lower() not in (".json", ".yaml", ".yml"):
        raise ValueError(f"--grid must be a grid file ending in .yaml, .yml or .json, got {args.grid!r} (the presets "
                         f"go to --preset).")
    grid = resolve_grid(args.grid) if args.grid is not None \
        else check_choice("--preset", args.preset or "quick", PRESET_NAMES)
    models = _models(args, ctx.device)
    first = next(iter(models.values()))
    if isinstance(first.entry.preprocessing, NnUNetPreprocessing):
        cases = _nnunet_cases(args, first)
    else:
        cfg = data_config_from_args(args, first.entry.preprocessing)
        prep = Preprocessing(orientation=first.entry.preprocessing.orientation, spacing_mm=cfg.spacing,
                             a_min=cfg.a_min, a_max=cfg.a_max, b_min=cfg.b_min, b_max=cfg.b_max, roi=cfg.roi)
        models = {label: dataclasses.replace(m, entry=dataclasses.replace(
            m.entry, preprocessing=dataclasses.replace(prep, roi=m.entry.preprocessing.roi) if m is not first
            else prep)) for label, m in models.items()}
        cases = _cases(args, cfg, first.entry.num_classes)
    check_choice("--corruption_modality", args.corruption_modality, ("auto", "ct", "mr"))
    track = args.corruptions
    if track is not None and len(track) == 1 and track[0] in ("all", "none"):
        track = track[0]
    try:
        result = audit(cases=cases, models=models, grid=grid, corruptions=track,
                       corruption_modality=args.corruption_modality, frequency_analysis=args.frequency_analysis,
                       output=args.output, overwrite=args.overwrite,
                       resume=args.resume, seed=args.seed, metrics_preset=args.metrics_preset,
                       attack_mode=args.attack_mode, overlap=args.infer_overlap,
                       tile_batch_size=args.tile_batch_size, sw_batch_size=args.sw_batch_size,
                       precision=args.precision, arguments=vars(args), ctx=ctx, ssim_levels=args.ssim_levels,
                       steps=args.steps if flag_given(args, "steps") else None)
    except KeyboardInterrupt:
        if ctx.is_main:
            print(f"{Path(args.output).name}: finished cells are kept; run the same command with --resume to "
                  "continue.", file=sys.stderr)
        raise
    if ctx.is_main:
        print(format_audit_summary(result.summary))
        reused = f" ({result.reused} reused)" if result.reused else ""
        print(f"{len(result.cells)} cells{reused}; results written to {result.folder}")
    return 0


def _num(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def format_audit_summary(summary: dict[str, Any]) -> str:
    """Robust Dice per model and SSIM level, then per attack its half-clean-Dice budget and normalised area."""
    levels = summary["levels"]
    width = max([len(m) for m in summary["models"]] + [10])
    lines = [f"{'model':{width}}  {'clean':>7}  " + "  ".join(f"{'SSIM>=' + level:>11}" for level in levels)]
    for model in summary["models"]:
        own = summary["per_model"][model]
        lines.append(f"{model:{width}}  {_num(own['clean_dice']):>7}  "
                     + "  ".join(f"{_num(own['robust_dice'][level]):>11}" for level in levels))
    lines.append("")
    lines.append(f"{'model':{width}}  {'attack':<10} {'budget':<9} {'half-Dice budget':>16}  {'AUC/range':>9}")
    for model in summary["models"]:
        for attack, entry in summary["per_model"][model]["attacks"].items():
            lines.append(f"{model:{width}}  {attack:<10} {entry['budget_name']:<9} "
                         f"{_num(entry['half_dice_budget']):>16}  {_num(entry['auc_normalised']):>9}")
    tracks = {m: summary["per_model"][m].get("corruptions") or {} for m in summary["models"]}
    if any(t.get("per_corruption") for t in tracks.values()):
        lines.append("")
        lines.append(f"{'model':{width}}  {'corruption':<16} {'Overall':>8}  {'Degradation':>11}")
        for model, track in tracks.items():
            for name, entry in track["per_corruption"].items():
                lines.append(f"{model:{width}}  {name:<16} {_num(entry['overall']):>8}  "
                             f"{_num(entry['degradation']):>11}")
            lines.append(f"{model:{width}}  {'(mean)':<16} {_num(track['overall']):>8}  "
                         f"{_num(track['degradation']):>11}")
    return "\n".join(lines)
