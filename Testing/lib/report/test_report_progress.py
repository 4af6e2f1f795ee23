"""progress_bar: drawn when forced, silent on non-terminals, driven by runtime.Progress callbacks."""

from __future__ import annotations

import io

import pytest

from SpectrumAttackLib.report.progress import progress_bar
from SpectrumAttackLib.runtime import Progress


def test_callback_drives_the_bar():
    stream = io.StringIO()
    with progress_bar(10, "attack", force=True, file=stream) as bar:
        bar.as_callback()(Progress(3, 10, "attack", "loss 0.5"))
        assert (bar.done, bar.total) == (3, 10)
    final = stream.getvalue().split("\r")[-1]  # tqdm redraws in place; the last frame is the closing state
    assert final.startswith("attack:") and "3/10" in final and "attack loss 0.5" in final


def test_new_total_or_smaller_done_restarts_the_bar():
    stream = io.StringIO()
    with progress_bar(10, "attack", force=True, file=stream) as bar:
        callback = bar.as_callback()
        callback(Progress(7, 10, "attack"))
        callback(Progress(2, 10, "attack", "restart 2"))  # done went back: a restart
        assert (bar.done, bar.total) == (2, 10)
        callback(Progress(1, 4, "tiles"))  # a new total: a new stage
        assert (bar.done, bar.total) == (1, 4)
    assert "1/4" in stream.getvalue().split("\r")[-1]


def test_update_counts_and_message():
    stream = io.StringIO()
    bar = progress_bar(3, "cases", force=True, file=stream, unit="case")
    bar.update(message="case_01")
    bar.update(2)
    bar.close()
    assert bar.done == 3
    assert "3/3" in stream.getvalue() and "case_01" in stream.getvalue() and "case/s" in stream.getvalue()


def test_silent_when_not_a_terminal():
    stream = io.StringIO()  # isatty() is False
    with progress_bar(5, "attack", file=stream) as bar:
        bar.as_callback()(Progress(5, 5, "attack"))
    assert not bar.enabled
    assert stream.getvalue() == ""


def test_bad_total():
    with pytest.raises(ValueError, match="total"):
        progress_bar(-1, "attack")


def test_log_lines_to_a_non_terminal_give_one_line_per_update_with_eta():
    import io

    from SpectrumAttackLib.report.progress import progress_bar

    stream = io.StringIO()
    with progress_bar(4, "audit", file=stream, log_lines=True) as bar:
        bar.update(message="cell one: Dice 0.8")
        bar.update(message="cell two")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("audit 1/4: cell one: Dice 0.8; elapsed ")
    assert "ETA" in lines[1] and lines[1].startswith("audit 2/4: cell two")
    quiet = io.StringIO()
    with progress_bar(2, "attack", file=quiet) as bar:  # without log_lines a non-terminal stays silent
        bar.update(message="x")
    assert quiet.getvalue() == ""
