"""Grepable output against nmap's file for the same scan, and the regexes scripts use on it."""

from __future__ import annotations

import io
import re

import pytest

from leadline.model import Hostname, PortResult, PortState, Reason
from leadline.output.grepable import GrepableOutput
from tests.unit.test_output_samples import (
    NMAP_VERBOSE_REASON_GREPABLE,
    as_leadline,
    down_host,
    lab_ports,
    render,
    run_info,
    stats,
    up_host,
    utc,
    verbose_run_events,
)

__all__ = ["utc"]
pytestmark = pytest.mark.usefixtures("utc")

HOST_STATUS = re.compile(r"^Host: (\S+) \(([^)]*)\)\tStatus: (Up|Down|Unknown|Timeout)$")
HOST_PORTS = re.compile(r"^Host: (\S+) \(([^)]*)\)\tPorts: (.*?)(?:\tIgnored State: (\S+) \((\d+)\))?$")
PORT_ENTRY = re.compile(r"^(\d+)/([a-z|]+)/(tcp|udp|sctp)/([^/]*)/([^/]*)/([^/]*)/([^/]*)/$")
HEADER = re.compile(r"^# leadline \S+ scan initiated \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} as: .*$")
FOOTER = re.compile(r"^# leadline done at .* -- \d+ IP address(es)? \(\d+ hosts? up\) scanned in \d+\.\d\d seconds$")


def test_verbose_run_matches_nmap_line_by_line() -> None:
    stream = io.StringIO()
    verbose_run_events(GrepableOutput(stream))
    assert stream.getvalue() == as_leadline(NMAP_VERBOSE_REASON_GREPABLE)


def test_every_line_matches_the_regexes_scripts_use() -> None:
    named = up_host(address="198.18.1.10", hostnames=(Hostname("typed.lab", "user"), Hostname("srv10.lab", "PTR")))
    out = render(GrepableOutput, run_info(verbosity=1), [named, down_host()], stats(up=1, down=1))
    lines = out.splitlines()
    assert HEADER.match(lines[0])
    assert FOOTER.match(lines[-1])
    status = HOST_STATUS.match(lines[2])
    assert status and status.groups() == ("198.18.1.10", "srv10.lab", "Up")
    ports = HOST_PORTS.match(lines[3])
    assert ports is not None
    assert ports.group(4, 5) == ("closed", "97")
    entries = [PORT_ENTRY.match(e) for e in ports.group(3).split(", ")]
    assert [(m.group(1), m.group(2), m.group(5)) for m in entries if m] == [
        ("22", "open", "ssh"), ("80", "open", "http"), ("81", "filtered", "hosts2-ns"), ("8000", "open", "http-alt")
    ]
    assert HOST_STATUS.match(lines[4]).group(3) == "Down"  # type: ignore[union-attr]


def test_ignored_state_is_named_only_when_one_state_is_folded() -> None:
    # nmap --open folds closed and filtered here, and then names neither
    out = render(GrepableOutput, run_info(), [up_host()], None, open_only=True)
    assert out.splitlines()[2] == (
        "Host: 198.18.201.2 ()\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///, 8000/open/tcp//http-alt///"
    )


def test_all_ports_ignored_leaves_an_empty_ports_field() -> None:
    ports = tuple(PortResult(n, "tcp", PortState.FILTERED, Reason.NO_RESPONSE) for n in range(1, 101))
    out = render(GrepableOutput, run_info(), [up_host(ports, address="198.18.201.9")], None)
    assert out.splitlines()[2] == "Host: 198.18.201.9 ()\tPorts: \tIgnored State: filtered (100)"


def test_unknown_service_leaves_the_field_empty_and_udp_follows_tcp() -> None:
    ports = (
        PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE, service="domain"),
        PortResult(60999, "tcp", PortState.CLOSED, Reason.CONN_REFUSED),
    )
    out = render(GrepableOutput, run_info(), [up_host(ports)], None)
    assert out.splitlines()[2] == "Host: 198.18.201.2 ()\tPorts: 60999/closed/tcp/////, 53/open|filtered/udp//domain///"


def test_ping_scan_writes_status_lines_only_and_down_hosts_only_when_verbose() -> None:
    quiet = render(GrepableOutput, run_info(ping_only=True), [up_host(()), down_host()], stats(up=1, down=1))
    assert [line for line in quiet.splitlines() if line.startswith("Host:")] == ["Host: 198.18.201.2 ()\tStatus: Up"]
    loud = render(GrepableOutput, run_info(ping_only=True, verbosity=1), [down_host()], stats(up=0, down=1))
    assert "Host: 198.18.201.9 ()\tStatus: Down\n" in loud
    assert "# Ports scanned: TCP(0;) UDP(0;) SCTP(0;) PROTOCOLS(0;)\n" in loud


def test_interrupted_run_still_ends_with_the_done_comment() -> None:
    out = render(GrepableOutput, run_info(), [up_host(lab_ports(range(20, 25)))], stats(exit="error"))
    assert FOOTER.match(out.splitlines()[-1])
