"""leadline's raw TCP scans against nmap's, port by port, in the practice lab.

For every scan type (-sS -sF -sX -sN -sA -sW -sM) and for --scanflags,
nmap and leadline run in the same scanner namespace with the same flags;
every port's state, reason and reason_ttl must be equal.  Each scan
covers hosts that between them show every behaviour a port can have:
open, closed (RST), dropped, the five ICMP rejections of the firewall
host, and a host two routers away (reason_ttl 62).

Repeatability.  The rejections are ICMP errors, and Linux limits those
per destination (net.ipv4.icmp_ratelimit, one a second by default):
with the limit on, whichever scanner runs second finds some of the
rejected ports silent, so the two disagree at random.  The lab turns
that limit off in every namespace; the test checks it is still off (and
that the namespace-wide budget, icmp_msgs_per_sec, covers the handful
of rejections per scan) instead of loosening the comparison.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import HostStates, diff_states, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle]

LEADLINE = str(Path(sys.executable).parent / "leadline")
BASE = ["-Pn", "-n"]
MIXED_PORTS = "1-1024,8080,49999-50010"
MIXED_HOSTS = [practice.COURSE, practice.FIREWALL, practice.FAR, practice.IOT]
ICMP_REJECTIONS = {
    110: "host-unreach",
    111: "net-unreach",
    143: "admin-prohibited",
    993: "port-unreach",
    995: "host-prohibited",
}


def reason_ttls(xml_text: str) -> dict[tuple[str, int], str | None]:
    """(address, port) -> reason_ttl, for every port listed (not folded) in the XML."""
    out: dict[tuple[str, int], str | None] = {}
    for host in ET.fromstring(xml_text).findall("host"):
        address = next(a.get("addr", "") for a in host.findall("address") if a.get("addrtype") == "ipv4")
        for port in host.iter("port"):
            state = port.find("state")
            assert state is not None
            out[(address, int(port.get("portid", "0")))] = state.get("reason_ttl")
    return out


def compare(lab: Lab, flags: list[str], targets: list[str], expect_ports: int,
            timeout: float = 240) -> dict[str, HostStates]:
    """Run nmap, then leadline; assert every port of every target agrees; leadline's states."""
    argv = [*flags, *BASE, "-oX", "-", *targets]
    theirs = scan_in_lab(lab, ["nmap", *argv], timeout=timeout)
    assert theirs.returncode == 0, theirs.stderr
    ours = scan_in_lab(lab, [LEADLINE, *argv], timeout=timeout)
    assert ours.returncode == 0, ours.stderr
    assert "Traceback" not in ours.stderr
    our_states, their_states = read_states(ours.stdout), read_states(theirs.stdout)
    for address in targets:
        assert address in their_states and address in our_states, address
        assert len(their_states[address].ports) == expect_ports
        assert len(our_states[address].ports) == expect_ports
        differences = diff_states(our_states[address], their_states[address])
        assert not differences, f"{' '.join(flags)} {address}:\n" + "\n".join(differences[:40])
    our_ttls, their_ttls = reason_ttls(ours.stdout), reason_ttls(theirs.stdout)
    ttl_differences = {k: (our_ttls.get(k), their_ttls.get(k)) for k in set(our_ttls) | set(their_ttls)
                       if our_ttls.get(k) != their_ttls.get(k)}
    assert not ttl_differences, f"reason_ttl (leadline, nmap): {ttl_differences}"
    return our_states


@pytest.fixture(scope="module")
def lab(practice_lab: Lab) -> Lab:
    """The practice lab, after checking that ICMP rejections are answered every time."""
    for host in ("firewall", "course", "router1", "router2"):
        done = practice_lab.run(host, ["sysctl", "-n", "net.ipv4.icmp_ratelimit", "net.ipv4.icmp_msgs_per_sec"])
        ratelimit, per_second = (int(v) for v in done.stdout.split())
        assert ratelimit == 0, f"{host}: per-destination ICMP limit is on; nmap and leadline would differ at random"
        assert per_second >= 100, f"{host}: icmp_msgs_per_sec {per_second} may drop rejections"
    return practice_lab


# scan flag -> the (state, reason) of an open, a dropped and a closed port.
BEHAVIOUR = {
    "-sS": (("open", "syn-ack"), ("filtered", "no-response"), ("closed", "reset")),
    "-sF": (("open|filtered", "no-response"), ("open|filtered", "no-response"), ("closed", "reset")),
    "-sX": (("open|filtered", "no-response"), ("open|filtered", "no-response"), ("closed", "reset")),
    "-sN": (("open|filtered", "no-response"), ("open|filtered", "no-response"), ("closed", "reset")),
    "-sM": (("closed", "reset"), ("open|filtered", "no-response"), ("closed", "reset")),  # Linux resets FIN/ACK
    "-sA": (("unfiltered", "reset"), ("filtered", "no-response"), ("unfiltered", "reset")),
    "-sW": (("closed", "reset"), ("filtered", "no-response"), ("closed", "reset")),  # Linux: window 0
}


@pytest.mark.parametrize("scan_flag", list(BEHAVIOUR))
def test_every_scan_type_on_every_kind_of_port(lab: Lab, scan_flag: str) -> None:
    states = compare(lab, [scan_flag, "-p", MIXED_PORTS], MIXED_HOSTS, expect_ports=1037)
    open_port, dropped_port, closed_port = BEHAVIOUR[scan_flag]
    course = states[practice.COURSE].ports
    assert course[("tcp", 50007)] == open_port
    assert course[("tcp", 50003)] == dropped_port
    assert course[("tcp", 22)] == closed_port
    firewall = states[practice.FIREWALL].ports
    for port, reason in ICMP_REJECTIONS.items():
        assert firewall[("tcp", port)] == ("filtered", reason)
    assert firewall[("tcp", 23)] == closed_port  # rejected with a TCP reset
    assert firewall[("tcp", 22)] == open_port
    assert states[practice.FAR].ports[("tcp", 22)] == open_port


def test_syn_scan_of_every_course_server_port(lab: Lab) -> None:
    states = compare(lab, ["-sS", "-p-"], [practice.COURSE], expect_ports=65535)
    ports = states[practice.COURSE].ports
    assert sorted(p for (_, p), (s, _) in ports.items() if s == "open") == [50007, 50008]
    assert sorted(p for (_, p), (s, _) in ports.items() if s == "filtered") == [*range(50000, 50007), 50009]


def test_syn_scan_of_the_firewall_host(lab: Lab) -> None:
    states = compare(lab, ["-sS", "-p", "1-1024,8080"], [practice.FIREWALL], expect_ports=1025)
    ports = states[practice.FIREWALL].ports
    assert ports[("tcp", 8080)] == ("filtered", "no-response")
    assert {r for s, r in ports.values() if s == "filtered"} == {*ICMP_REJECTIONS.values(), "no-response"}


def test_windows_like_host_top_1000(lab: Lab) -> None:
    states = compare(lab, ["-sS", "-T4"], [practice.WINDOWS], expect_ports=1000)
    answered = sorted(p for (_, p), (s, _) in states[practice.WINDOWS].ports.items() if s != "filtered")
    assert answered == [135, 139, 445, 3389, 5357]


# --scanflags: alone it is read as a SYN scan; with a scan type, that type reads the replies,
# so a SYN/ACK from an open port counts for nothing in -sF / -sA (nmap ignores it).
SCANFLAGS = {
    "SYNFIN": (["--scanflags", "SYNFIN"], ("filtered", "no-response")),  # Linux drops SYN+FIN
    "ACKPSH": (["--scanflags", "ACKPSH"], ("closed", "reset")),  # an open port resets a stray ACK too
    "fin-with-SYN": (["-sF", "--scanflags", "SYN"], ("open|filtered", "no-response")),
    "ack-with-SYN": (["-sA", "--scanflags", "SYN"], ("filtered", "no-response")),
    "syn-with-FIN": (["-sS", "--scanflags", "FIN"], ("filtered", "no-response")),
}


@pytest.mark.parametrize("case", list(SCANFLAGS))
def test_scanflags(lab: Lab, case: str) -> None:
    flags, open_port = SCANFLAGS[case]
    ports = "20-25,80,110,143,8080,50003,50007"
    states = compare(lab, [*flags, "-p", ports], [practice.COURSE, practice.FIREWALL], expect_ports=12)
    assert states[practice.COURSE].ports[("tcp", 50007)] == open_port
    assert states[practice.FIREWALL].ports[("tcp", 143)] == ("filtered", "admin-prohibited")
