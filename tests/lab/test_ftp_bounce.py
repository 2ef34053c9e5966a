"""The FTP bounce scan through the lab's vsftpd (198.18.1.76): exactly the states the lab knows.

The course server's open (echo, HTTP), closed and dropped ports, bounced
through port 21 (port_promiscuous=YES); port 2121 refuses a PORT naming a
third host, and the scan says so in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from leadline.lab.ftpd import FTP, FTP_STRICT_PORT
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import read_states

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = list(range(1024, 1100)) + list(range(49990, 50011))


def _truth(port: int) -> str:
    if port in (practice.COURSE_ECHO_PORT, practice.COURSE_HTTP_PORT):
        return "open"
    return "filtered" if port in practice.COURSE_DROPPED_PORTS else "closed"


def test_bounce_scan_gives_exactly_the_labs_states(practice_lab: Lab) -> None:
    spec = f"{PORTS[0]}-{PORTS[75]},49990-50010"
    done = scan_in_lab(practice_lab, [LEADLINE, "-b", FTP, "-Pn", "-n", "-p", spec, "-oX", "-", practice.COURSE],
                       timeout=120)
    assert done.returncode == 0, done.stderr
    assert '<scaninfo type="bounce"' in done.stdout
    states = read_states(done.stdout)[practice.COURSE].ports
    assert {port: verdict[0] for (_proto, port), verdict in states.items()} == {p: _truth(p) for p in PORTS}


def test_privileged_ports_are_skipped_with_a_warning(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-b", f"anonymous@{FTP}:21", "-Pn", "-n", "-p", "22,80,50007",
                                      practice.COURSE])
    assert done.returncode == 0, done.stderr
    assert "doesn't allow privileged ports, skipping them" in done.stdout + done.stderr
    assert "50007/tcp open" in done.stdout and "22/tcp" not in done.stdout
    xml = scan_in_lab(practice_lab, [LEADLINE, "-b", FTP, "-Pn", "-n", "-p", "50008,50010", "-oX", "-", practice.COURSE])
    assert 'portid="50008"><state state="open" reason="no-response"' in xml.stdout  # nmap's reason for bounced ports


def test_a_server_refusing_third_party_port_is_one_line(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-b", f"{FTP}:{FTP_STRICT_PORT}", "-Pn", "-n", "-p", "50007",
                                      practice.COURSE])
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "does not allow a PORT to another host (it said: 500 Illegal PORT command.)" in done.stderr
