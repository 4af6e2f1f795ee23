"""``spectrum-attack``: the entry point and its error handling.

Subcommands live in one module each (``cmd_<name>.py``) exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Errors raised by our code for bad input (``ValueError``, ``FileNotFoundError``,
``RuntimeError``, ``NotImplementedError``, ``PermissionError``) become one line on stderr,
``spectrum-attack: error: <message>``, and exit code 2, without a traceback unless ``SPECTRUMATTACK_DEBUG=1``.
Ctrl+C (SIGINT) and SIGTERM stop the run the same way: its staged outputs are removed, ``spectrum-attack:
interrupted`` is printed and the exit code is 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from SpectrumAttackLib import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

PROG = "spectrum-attack"

#: subcommand → module in this package.
COMMANDS: dict[str, str] = {
    "attack": "cmd_attack",
    "evaluate": "cmd_evaluate",
    "train": "cmd_train",
    "transfer": "cmd_transfer",
    "audit": "cmd_audit",
    "harden": "cmd_harden",
    "demo": "cmd_demo",
    "analyze": "cmd_analyze",
    "sample-data": "cmd_sample_data",
    "serve": "cmd_serve",
}

_USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, NotImplementedError, PermissionError)


def _module(command: str):
    return importlib.import_module(f"{__package__}.{COMMANDS[command]}")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Adversarial attacks (SA², VAFA, PGD, ...) on volumetric segmentation models. The attack, "
        "evaluate and train subcommands take the flags of the reference scripts generate_adv_samples.py, "
        "inference_on_saved_adv_samples.py and run_normal_or_adv_training.py.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        _module(command).add_parser(subparsers)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spectrum-attack`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Returns:
        0 on success; 2 for bad input (one-line message on stderr) and for command-line syntax errors; the
        subcommand's own code otherwise.
    """
    debug = os.environ.get("SPECTRUMATTACK_DEBUG") == "1"
    previous_format = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # argparse: --help, --version, syntax errors (already printed)
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        from SpectrumAttackLib.pipeline.signals import terminate_as_interrupt

        with terminate_as_interrupt():  # SIGTERM cleans up like Ctrl+C: staged outputs are removed
            return int(_module(args.command).run(args) or 0)
    except _USER_ERRORS as exc:
        if debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":
    sys.exit(main())
