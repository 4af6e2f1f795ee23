"""``spectrum-attack sample-data``: fetch and build the BTCV-layout sample dataset (once), print where it is.

Examples::

    spectrum-attack sample-data                 # progress and a summary on stderr, the folder on stdout
    DATA=$(spectrum-attack sample-data --print-path)
"""

from __future__ import annotations

import argparse
import sys

from SpectrumAttackLib.data.sample_data import (
    ENV_VAR,
    SAMPLE_SPLIT,
    default_cache_dir,
    ensure_sample_data,
    sample_data_ready,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``sample-data`` subcommand."""
    parser = subparsers.add_parser(
        "sample-data",
        help="download (once) and build the BTCV-layout sample CT dataset",
        description="Fetch the TotalSegmentator 2.4.0 source archive with pip (8.2 MB, sha256-verified, "
        "Apache-2.0), extract its example CTs and their model-generated labels, map them onto the 13 BTCV "
        f"organs and write a dataset in the seed's layout with the split file {SAMPLE_SPLIT}. "
        f"The cache folder is --cache_dir, else ${ENV_VAR}, else ~/.cache/spectrumattack/sample-data.",
    )
    parser.add_argument("--cache_dir", default=None, help=f"cache folder (default: {default_cache_dir()})")
    parser.add_argument(
        "--print-path",
        dest="print_path",
        action="store_true",
        help="print only the dataset folder on stdout (for scripts); progress still goes to stderr",
    )


def _progress(report) -> None:
    print(f"[{report.done}/{report.total}] {report.message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Build the dataset if needed; print its folder. Returns 0."""
    fresh = not sample_data_ready(args.cache_dir)
    folder = ensure_sample_data(args.cache_dir, progress=_progress if fresh else None)
    print(folder)
    if args.print_path:
        return 0
    print(
        f"BTCV-layout sample data ({'built now' if fresh else 'already present'}): 3 CT cases from 2 patients, "
        f"silver labels; split file {folder / SAMPLE_SPLIT}; see {folder / 'README.txt'}.",
        file=sys.stderr,
    )
    return 0
