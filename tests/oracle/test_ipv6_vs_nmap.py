"""leadline -6 -sT / -sS against nmap -6 with the same flags, port by port, over IPv6.

The practice network is built under its own prefix ("llj") once for this
module, so the shared lab's firewall is never touched.  The lab's daemons
listen on IPv4 only, so the module opens IPv6 listeners of its own on
ports the practice topology leaves free (course 50010, far 443): every
scan then sees open, closed and dropped ports, on the local segment and
two routers away.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab, practice, practice_topology
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import HostStates, diff_states, read_states
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab, pytest.mark.oracle]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PREFIX = lab_prefix("j")
PORTS = "1-1024,50000-50010"
PORT_COUNT = 1024 + 11
LISTENERS = {"course": 50010, "far": 443}


def _listening6(pid: int, port: int) -> bool:
    try:
        lines = Path(f"/proc/{pid}/net/tcp6").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port and line.split()[3] == "0A"
               for line in lines)


@pytest.fixture(scope="module")
def lab6() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the IPv6 oracle needs root (network namespaces)", pytrace=False)
    lab = Lab(PREFIX)
    lab.down()
    listeners: list[subprocess.Popen[bytes]] = []
    try:
        lab.up(practice_topology())
        for host, port in LISTENERS.items():
            listeners.append(lab.popen(host, ["socat", f"TCP6-LISTEN:{port},fork,reuseaddr,ipv6only=1",
                                              "OPEN:/dev/null"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 5
        for process, port in zip(listeners, LISTENERS.values()):
            while not _listening6(process.pid, port):
                assert process.poll() is None and time.monotonic() < deadline, f"socat on {port} did not start"
                time.sleep(0.02)
        yield lab
    finally:
        for process in listeners:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        lab.down()


def both(lab: Lab, flags: list[str], targets: list[str]) -> tuple[dict[str, HostStates], dict[str, HostStates]]:
    theirs = scan_in_lab(lab, ["nmap", *flags, "-oX", "-", *targets], timeout=120)
    assert theirs.returncode == 0, theirs.stderr
    ours = scan_in_lab(lab, [LEADLINE, *flags, "-oX", "-", *targets], timeout=120)
    assert ours.returncode == 0, ours.stderr
    return read_states(ours.stdout), read_states(theirs.stdout)


@pytest.mark.parametrize(("scan", "closed_reason"), [("-sT", "conn-refused"), ("-sS", "reset")])
def test_course_and_far_host_match_nmap(lab6: Lab, scan: str, closed_reason: str) -> None:
    ours, theirs = both(lab6, ["-6", scan, "-Pn", "-n", "-p", PORTS], [practice.COURSE6, practice.FAR6])
    for address in (practice.COURSE6, practice.FAR6):
        assert address in theirs and address in ours, sorted(ours)
        assert len(theirs[address].ports) == PORT_COUNT
        assert len(ours[address].ports) == PORT_COUNT
        differences = diff_states(ours[address], theirs[address])
        assert not differences, "\n".join(differences[:40])
    course = ours[practice.COURSE6].ports
    assert course[("tcp", 50010)] == ("open", "syn-ack")
    assert course[("tcp", 50003)] == ("filtered", "no-response")
    assert course[("tcp", 22)] == ("closed", closed_reason)
    far = ours[practice.FAR6].ports
    assert far[("tcp", 443)] == ("open", "syn-ack")
    assert far[("tcp", 21)] == ("closed", closed_reason)


def test_ipv6_ping_sweep_finds_the_same_hosts_and_macs(lab6: Lab) -> None:
    targets = ["fd18:4c11:0:1::/120", practice.FAR6]
    ours, theirs = both(lab6, ["-6", "-sn", "-n"], targets)
    up_theirs = {a: h.mac for a, h in theirs.items() if h.status == "up"}
    up_ours = {a: h.mac for a, h in ours.items() if h.status == "up"}
    assert up_ours == up_theirs
    assert practice.COURSE6 in up_ours and practice.NO_HOST6 not in up_ours
    assert ours[practice.COURSE6].status_reason == theirs[practice.COURSE6].status_reason == "nd-response"


def test_ipv6_syn_scan_with_discovery_matches_nmap(lab6: Lab) -> None:
    targets = [practice.COURSE6, practice.NO_HOST6, practice.FAR6]
    ours, theirs = both(lab6, ["-6", "-sS", "-n", "-p", "22,80,50007,50010"], targets)
    assert sorted(a for a, h in ours.items() if h.status == "up") == sorted(a for a, h in theirs.items() if h.status == "up")
    for address in (practice.COURSE6, practice.FAR6):
        assert ours[address].status_reason == theirs[address].status_reason
        assert ours[address].mac == theirs[address].mac
        assert not diff_states(ours[address], theirs[address])


def test_every_port_of_the_course_server_over_ipv6_matches_nmap(lab6: Lab) -> None:
    # 65535 probes: split across worker processes, whose capture filters find
    # the TCP source port right after the 40-byte IPv6 header.
    ours, theirs = both(lab6, ["-6", "-sS", "-Pn", "-n", "-p-"], [practice.COURSE6])
    assert len(ours[practice.COURSE6].ports) == 65535
    differences = diff_states(ours[practice.COURSE6], theirs[practice.COURSE6])
    assert not differences, "\n".join(differences[:40])
    assert ours[practice.COURSE6].ports[("tcp", 50010)] == ("open", "syn-ack")


def test_our_own_ipv6_address_is_up_without_a_latency_as_in_nmap(lab6: Lab) -> None:
    lines = []
    for tool in (LEADLINE, "nmap"):
        done = scan_in_lab(lab6, [tool, "-6", "-sn", "-n", practice.SCANNER6], timeout=60)
        assert done.returncode == 0, done.stderr
        lines.append([line for line in done.stdout.splitlines() if line.startswith("Host is up")])
    assert lines[0] == lines[1] == ["Host is up."]
