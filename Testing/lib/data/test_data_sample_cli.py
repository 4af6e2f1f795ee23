"""``spectrum-attack sample-data``: the subcommand module's parser and output contract."""

from __future__ import annotations

import argparse

from SpectrumAttackLib.cli import cmd_sample_data


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spectrum-attack")
    cmd_sample_data.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sample-data", *argv])


def test_print_path_prints_only_the_folder(sample_dataset, capsys):
    assert cmd_sample_data.run(_parse("--print-path")) == 0
    out, err = capsys.readouterr()
    assert out == f"{sample_dataset}\n" and err == ""


def test_summary_goes_to_stderr(sample_dataset, capsys):
    assert cmd_sample_data.run(_parse()) == 0
    out, err = capsys.readouterr()
    assert out == f"{sample_dataset}\n"
    assert "already present" in err and "dataset_sample.json" in err


def test_cache_dir_option_builds_there_with_progress(cached_archive, capsys):
    assert cmd_sample_data.run(_parse("--cache_dir", str(cached_archive), "--print-path")) == 0
    out, err = capsys.readouterr()
    assert out == f"{cached_archive / 'btcv-sample'}\n"
    assert "[5/5] sample data ready" in err
