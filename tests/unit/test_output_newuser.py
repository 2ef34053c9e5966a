"""What a user who knows nmap expects from the terminal and the files, driven through the sinks."""

from __future__ import annotations

import io

import pytest

from leadline.model import HostResult, HostStatus, PortResult, PortState, Reason
from leadline.output.base import FanOut
from leadline.output.grepable import GrepableOutput
from leadline.output.json import JsonOutput
from leadline.output.normal import INTERRUPTED_NOTE, NormalOutput
from leadline.output.progress import ProgressLine
from tests.unit.test_output_samples import START, down_host, lab_ports, render, run_info, stats, up_host, utc

__all__ = ["utc"]

pytestmark = pytest.mark.usefixtures("utc")

OPEN80 = PortResult(80, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "http")
CLOSED22 = PortResult(22, "tcp", PortState.CLOSED, Reason.RESET, 64, "ssh")


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_open_ports_as_they_are_found() -> None:
    stream = TerminalStream()
    line = ProgressLine(stream)
    line.begin(run_info())
    line.task_begin("Connect Scan", START)
    for port in (OPEN80, CLOSED22, PortResult(8000, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "http-alt")):
        line.port_found("198.18.1.10", port)
    line.task_progress("Connect Scan", START + 20, 50.0, 20.0, START + 40)
    assert stream.getvalue().endswith("2 open ports found")
    line.host(up_host((OPEN80, CLOSED22, PortResult(8000, "tcp", PortState.OPEN, Reason.SYN_ACK))))
    assert line.open_ports == 2  # the host's own opens replace the ones noted, not add to them


def test_progress_line_holds_back_an_early_wild_estimate() -> None:
    line = ProgressLine(TerminalStream())
    line.task_begin("Connect Scan", START)
    line.task_progress("Connect Scan", START + 1, 0.01, 132226.0, START + 132227)
    assert "remaining" not in line.status_text()
    line.task_progress("Connect Scan", START + 30, 6.0, 470.0, START + 500)
    assert "0:07:50 remaining" in line.status_text()


def test_verbose_terminal_prints_discovered_open_port_lines_only() -> None:
    stream = io.StringIO()
    out = NormalOutput(stream, verbosity=1)
    out.begin(run_info(verbosity=1))
    out.port_found("198.18.1.10", OPEN80)
    out.port_found("198.18.1.10", CLOSED22)
    assert stream.getvalue().splitlines()[1:] == ["Discovered open port 80/tcp on 198.18.1.10"]


@pytest.mark.parametrize("options", [{"verbosity": 0}, {"verbosity": 1, "file_header": True}])
def test_no_discovered_lines_without_v_or_in_files(options: dict[str, object]) -> None:
    stream = io.StringIO()
    NormalOutput(stream, **options).port_found("198.18.1.10", OPEN80)  # type: ignore[arg-type]
    assert "Discovered" not in stream.getvalue()


def test_fanout_carries_port_found_to_progress_and_normal_output() -> None:
    progress, text = ProgressLine(io.StringIO(), enabled=False), io.StringIO()
    FanOut([progress, NormalOutput(text, verbosity=1)]).port_found("198.18.1.10", OPEN80)
    assert progress.open_ports == 1 and "Discovered open port 80/tcp on 198.18.1.10" in text.getvalue()


def test_interrupted_host_says_so_in_normal_and_grepable_output() -> None:
    host = up_host(lab_ports((1, 2, 3)), interrupted=True)
    normal = render(NormalOutput, run_info(), [host], stats(exit="error", error="interrupted"))
    assert INTERRUPTED_NOTE in normal.splitlines()
    grepable = render(GrepableOutput, run_info(), [host], stats(exit="error", error="interrupted"))
    lines = grepable.splitlines()
    assert "# 198.18.201.2: scan interrupted, the ports above are incomplete" in lines
    assert "# QUITTING! interrupted" in lines
    assert INTERRUPTED_NOTE not in render(NormalOutput, run_info(), [up_host()], stats())


def test_grepable_file_of_a_finished_run_has_no_quitting_mark() -> None:
    assert "QUITTING" not in render(GrepableOutput, run_info(), [up_host()], stats())


PING_HINT = "Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn"


@pytest.mark.parametrize("hint, hosts, options, shown", [
    (True, [down_host()], {}, True),
    (True, [down_host(), down_host("198.18.201.10")], {}, False),  # nmap says it for a lone host only
    (False, [down_host()], {}, False),  # -Pn or -sL: discovery did not run
    (True, [down_host()], {"file_header": True}, False),  # the terminal only, as nmap
])
def test_lone_down_host_gets_nmaps_ping_hint(hint: bool, hosts: list[object], options: dict[str, object], shown: bool) -> None:
    text = render(NormalOutput, run_info(), hosts, stats(up=0, down=len(hosts)), ping_hint=hint, **options)
    assert (PING_HINT in text.splitlines()) is shown
    if shown:
        lines = text.splitlines()
        assert lines.index(PING_HINT) == len(lines) - 2  # just before the done line, as nmap prints it


LISTED = ["198.18.1.1", "198.18.1.2", "2001:db8::1"]


def _list_hosts() -> list[HostResult]:
    return [HostResult(address=a, family=6 if ":" in a else 4, status=HostStatus.UNKNOWN, status_reason=Reason.USER_SET)
            for a in LISTED]


@pytest.mark.parametrize("sink_type", [NormalOutput, GrepableOutput, JsonOutput])
def test_a_batch_of_listed_addresses_writes_what_host_events_would(sink_type: type) -> None:
    run = run_info("leadline -sL -n 198.18.1.1-2")
    one_by_one = render(sink_type, run, _list_hosts(), stats(up=0))
    stream = io.StringIO()
    sink = sink_type(stream)
    sink.begin(run)
    sink.listed(LISTED[:1])
    sink.listed(LISTED[1:])
    sink.end(stats(up=0))
    assert stream.getvalue() == one_by_one


def test_guarded_sinks_give_host_events_to_a_sink_without_listed() -> None:
    import threading

    from leadline.cli.main import GuardedSinks
    from leadline.output.xml import XmlOutput

    run = run_info("leadline -sL -n 198.18.1.1-2")
    xml_stream, progress = io.StringIO(), ProgressLine(io.StringIO(), enabled=False)
    sinks = GuardedSinks([progress, XmlOutput(xml_stream)], threading.RLock())
    sinks.begin(run)
    sinks.listed(LISTED)
    sinks.end(stats(up=0))
    assert render(XmlOutput, run, _list_hosts(), stats(up=0)) == xml_stream.getvalue()
    assert progress.hosts_done == 3
