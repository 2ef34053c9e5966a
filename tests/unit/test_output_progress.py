"""The terminal progress line: drawn only on a terminal, always gone before other output."""

from __future__ import annotations

import io
import os

import pytest

from leadline.output.base import FanOut
from leadline.output.normal import NormalOutput
from leadline.output.progress import ProgressLine
from tests.unit.test_output_samples import START, lab_ports, run_info, stats, up_host, utc

__all__ = ["utc"]
pytestmark = pytest.mark.usefixtures("utc")


class TerminalStream(io.StringIO):
    """An in-memory stream that says it is a terminal, as a tty does."""

    def isatty(self) -> bool:
        return True


def test_writes_nothing_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)
    line.begin(run_info())
    line.task_begin("Connect Scan", START)
    line.task_progress("Connect Scan", START + 2, 50.0, 2.0, START + 4)
    line.note_open(3)
    line.host(up_host())
    line.clear()
    line.end(stats())
    assert stream.getvalue() == ""


def test_writes_nothing_to_a_real_pipe() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe, os.fdopen(read_end) as reader:
        line = ProgressLine(pipe)
        line.task_progress("Connect Scan", START, 10.0, None, None)
        pipe.close()
        assert reader.read() == ""


def test_redraws_in_place_and_clears_before_other_output() -> None:
    stream = TerminalStream()
    line = ProgressLine(stream)
    line.begin(run_info())
    line.task_begin("Connect Scan", START)
    line.note_open(2)
    line.task_progress("Connect Scan", START + 5, 45.5, 6.0, START + 11)
    first = "Connect Scan: 45.5% done; ETC 05:05 (0:00:06 remaining); 2 open ports found"
    assert stream.getvalue() == "\r" + first
    line.task_progress("Connect Scan", START + 6, 50.0, None, None)
    second = "Connect Scan: 50.0% done; 2 open ports found"
    assert stream.getvalue() == "\r" + first + "\r" + second.ljust(len(first))
    stream.seek(0)
    stream.truncate()
    line.clear()
    assert stream.getvalue() == "\r" + " " * len(second) + "\r"
    line.clear()  # nothing drawn any more: nothing written
    assert stream.getvalue() == "\r" + " " * len(second) + "\r"


def test_open_ports_counted_once_from_engine_notes_and_emitted_hosts() -> None:
    line = ProgressLine(TerminalStream())
    line.note_open(2)
    assert line.open_ports == 2
    line.host(up_host(lab_ports((22, 80, 81))))  # the two noted ports arrive with their host
    assert line.open_ports == 2
    line.host(up_host(lab_ports((8000,)), address="198.18.201.3"))
    assert line.open_ports == 3
    assert line.status_text().endswith("; 3 open ports found")


def test_in_a_fanout_the_line_is_erased_before_the_host_report() -> None:
    stream = TerminalStream()
    progress = ProgressLine(stream)
    sink = FanOut([progress, NormalOutput(stream)])
    sink.begin(run_info())
    sink.task_progress("Connect Scan", START + 1, 12.0, None, None)
    sink.host(up_host(lab_ports((22,))))
    text = stream.getvalue()
    drawn = "\rConnect Scan: 12.0% done; 0 open ports found"
    assert text.count(drawn) == 1
    after = text.split(drawn, 1)[1]
    assert after.startswith("\r" + " " * (len(drawn) - 1) + "\rleadline scan report for 198.18.201.2\n")


def test_long_lines_are_cut_to_the_width() -> None:
    line = ProgressLine(TerminalStream(), width=20)
    line.task_progress("Parallel DNS resolution of 256 hosts.", START, 1.0, None, None)
    assert len(line.status_text()) == 20


def test_stats_lines_like_nmaps_stats_every() -> None:
    line = ProgressLine(io.StringIO())
    line.begin(run_info())
    assert line.stats_lines(START + 3) == ["Stats: 0:00:03 elapsed; 0 hosts completed (0 up)"]
    line.host(up_host())
    line.task_begin("Connect Scan", START + 5)
    line.task_progress("Connect Scan", START + 65, 45.5, 3723.0, START + 3788)
    assert line.stats_lines(START + 65) == [
        "Stats: 0:01:05 elapsed; 1 host completed (1 up), 1 undergoing Connect Scan",
        "Connect Scan Timing: About 45.50% done; ETC: 06:08 (1:02:03 remaining)",
    ]
