"""leadline -sU against nmap -sU, port by port, in the practice lab, with the targets' ICMP limit off.

Three hosts: the IoT device (a silent DHCP client port, an answering
mDNS echo, everything else closed), the firewall host (its rules are for
TCP: every UDP port answers port unreachable) and udpsrv (real daemons
answering real requests, silent listeners).  With the per-destination
ICMP limit off in every namespace both scanners get every answer, so
every port's state and reason must be equal.  The deliberate differences
are udpsrv's ports in ``AHEAD``, where nmap (7.93) leaves a live server
open|filtered and leadline finds it open: TFTP answers from a new port
(nmap#2406), and nmap has no probe that a QUIC or a SIP server answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from leadline.lab.udpservices import UDPSRV, UDPSRV_OPEN, UDPSRV_SILENT
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import diff_states, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle, pytest.mark.serial]  # every ICMP answer counts: no other scan shares the targets' budget

LEADLINE = str(Path(sys.executable).parent / "leadline")
TARGETS = {"iot": practice.IOT, "firewall": practice.FIREWALL, "udpsrv": UDPSRV}
UDPSRV_PORTS = ",".join(str(p) for p in sorted({*UDPSRV_OPEN, *UDPSRV_SILENT, 40000, 40001}))
# udpsrv's ports where leadline is ahead of nmap: open where nmap says open|filtered.
AHEAD = {
    69: "tftpd-hpa answers from a new port, which nmap does not take for the probed one (nmap#2406)",
    443: "nmap's payload for 443 is DTLS; a QUIC server answers only a QUIC long header",
    5060: "nmap-payloads has no SIP request: nmap sends an empty datagram, which kamailio ignores",
}


def _ahead(address: str, difference: str) -> bool:
    port, protocol = difference.split(":", 1)[0].split("/")
    if address != UDPSRV or protocol != "udp":
        return False
    return int(port) in AHEAD and "nmap=('open|filtered'" in difference


@pytest.fixture(scope="module")
def lab(practice_lab: Lab) -> Lab:
    for host in TARGETS:
        done = practice_lab.run(host, ["sysctl", "-n", "net.ipv4.icmp_ratelimit"])
        assert done.stdout.strip() == "0", f"{host}: the ICMP limit is on; nmap and leadline would differ at random"
    return practice_lab


def compare(lab: Lab, argv: list[str], targets: list[str]) -> dict[str, dict[tuple[str, int], tuple[str, str]]]:
    full = ["-sU", "-Pn", "-n", "-oX", "-", *argv, *targets]
    theirs = scan_in_lab(lab, ["nmap", *full], timeout=300)
    assert theirs.returncode == 0, theirs.stderr
    ours = scan_in_lab(lab, [LEADLINE, *full], timeout=300)
    assert ours.returncode == 0 and "Traceback" not in ours.stderr, ours.stderr
    our_states, their_states = read_states(ours.stdout), read_states(theirs.stdout)
    for address in targets:
        differences = [d for d in diff_states(our_states[address], their_states[address]) if not _ahead(address, d)]
        assert not differences, f"{address}:\n" + "\n".join(differences[:40])
    return {a: s.ports for a, s in our_states.items()}


def test_top_100_udp_ports_of_the_iot_device_and_the_firewall_host(lab: Lab) -> None:
    ours = compare(lab, ["--top-ports", "100"], [practice.IOT, practice.FIREWALL])
    assert ours[practice.IOT][("udp", 5353)] == ("open", "udp-response")
    assert ours[practice.IOT][("udp", 68)] == ("open|filtered", "no-response")
    assert {s for s, _ in ours[practice.FIREWALL].values()} == {"closed"}


def test_the_udp_server_host(lab: Lab) -> None:
    ours = compare(lab, ["-p", UDPSRV_PORTS], [UDPSRV])
    states = ours[UDPSRV]
    for port in UDPSRV_OPEN:
        assert states[("udp", port)] == ("open", "udp-response"), port
    for port in UDPSRV_SILENT:
        assert states[("udp", port)] == ("open|filtered", "no-response"), port
    assert states[("udp", 40000)] == ("closed", "port-unreach")


def test_the_udp_server_host_top_100_with_tcp_in_the_same_run(lab: Lab) -> None:
    compare(lab, ["-sS", "--top-ports", "100"], [UDPSRV, practice.IOT])
