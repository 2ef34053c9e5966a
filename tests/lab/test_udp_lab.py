"""-sU against real kernels and real daemons: the truth the lab knows, with the ICMP limit left on.

With Linux's default limit (a burst of six errors per source address,
then one a second) nmap itself varies from run to run, so these tests
compare with what the lab knows: which ports have a listener that
answers, which have one that never does, and that every other port is
closed.

Every payload of ``core/udppayloads.py`` has a real server from a Debian
package on udpsrv (``lab/udpservices.py``, ``lab/udpdaemons.py``), and
one scan of all their ports with our payloads alone must find each
``open`` with ``udp-response``; nmap's view of the same ports is
compared in tests/oracle/test_udp_vs_nmap.py.  No payload is left
without a server.  Choices the servers forced:

* DHCP: dnsmasq answers a DHCPINFORM at the address in ciaddr, so the
  probe names its own address there (with 0 it got no answer).
* RIP: BIRD drops a request from any source port but 520 ("wrong src
  port"), so its answer could never reach a probe's cookie port; FRR's
  ripd answers a query at its source port, as RFC 2453 s3.9.1 says.
* SSDP: minidlna binds its SSDP socket to the multicast group, so a
  unicast M-SEARCH never reaches it; miniupnpd takes unicast too.
* QUIC: Debian 12's nginx (1.22) has no QUIC; ngtcp2's example server
  answers version negotiation.

On ports where the table sends two payloads (DNS, SNMP) each is also
sent on its own (``--data``) and must be answered alone; elsewhere the
scan with our payloads already sends each alone.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.core.udppayloads import PAYLOADS
from leadline.lab import Lab, practice
from leadline.lab.udpservices import UDPSRV, UDPSRV6, UDPSRV_OPEN, UDPSRV_SILENT
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import read_states

pytestmark = pytest.mark.lab

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = sorted({*range(1, 21), 68, 5353, *UDPSRV_OPEN, *UDPSRV_SILENT})  # each closed port: about a second under the limit
POOL = [f"198.18.1.{n}" for n in range(200, 208)]


def truth(address: str) -> dict[int, tuple[str, str]]:
    if address == practice.IOT:
        special = {68: ("open|filtered", "no-response"), 5353: ("open", "udp-response")}
    else:
        special = {p: ("open", "udp-response") for p in UDPSRV_OPEN}
        special.update({p: ("open|filtered", "no-response") for p in UDPSRV_SILENT})
    return {p: special.get(p, ("closed", "port-unreach")) for p in PORTS}


@pytest.fixture
def limit_on(practice_lab: Lab) -> Iterator[Lab]:
    """The kernel's default ICMP limit on the two targets, for one test."""
    for host in ("iot", "udpsrv"):
        practice_lab.set_sysctls(host, {"net.ipv4.icmp_ratelimit": "1000"})
    try:
        yield practice_lab
    finally:
        for host in ("iot", "udpsrv"):
            practice_lab.set_sysctls(host, {"net.ipv4.icmp_ratelimit": "0"})


def udp_states(lab: Lab, argv: list[str], timeout: float = 300) -> dict[str, dict[int, tuple[str, str]]]:
    done = scan_in_lab(lab, [LEADLINE, "-sU", "-Pn", "-n", "-oX", "-", *argv], timeout=timeout)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return {a: {p: v for (proto, p), v in h.ports.items() if proto == "udp"} for a, h in read_states(done.stdout).items()}


@pytest.mark.serial  # turns the ICMP limit on in the shared practice lab: no other test may scan it meanwhile
def test_with_the_default_limit_every_port_is_what_the_lab_knows(limit_on: Lab) -> None:
    ports = ",".join(map(str, PORTS))
    states = udp_states(limit_on, ["-p", ports, practice.IOT, UDPSRV])
    for address in (practice.IOT, UDPSRV):
        wrong = {p: (v, truth(address)[p]) for p, v in states[address].items() if v != truth(address)[p]}
        assert not wrong, f"{address}: (leadline, truth) {wrong}"
        assert len(states[address]) == len(PORTS)


@pytest.mark.serial  # turns the ICMP limit on in the shared practice lab: no other test may scan it meanwhile
def test_a_source_pool_gets_the_same_truth(limit_on: Lab) -> None:
    for address in POOL:
        limit_on.run(limit_on.scanner, ["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
    try:
        ports = ",".join(map(str, PORTS))
        states = udp_states(limit_on, ["--source-pool", ",".join(POOL), "-p", ports, practice.IOT])
        assert states[practice.IOT] == truth(practice.IOT)
    finally:
        for address in POOL:
            limit_on.run(limit_on.scanner, ["ip", "addr", "del", f"{address}/24", "dev", "eth0"])


SHARING = {p.name: p for p in PAYLOADS if sum(p.ports[0] in q.ports for q in PAYLOADS) > 1}


def test_every_payload_has_a_real_server_in_the_lab() -> None:
    assert {port for p in PAYLOADS for port in p.ports} <= set(UDPSRV_OPEN)
    assert set(SHARING) == {"dns-version-bind", "dns-root", "snmp-v1-public", "snmp-v2c-public"}


@pytest.mark.parametrize("name", sorted(SHARING))
def test_each_payload_of_a_shared_port_alone_is_answered_by_its_real_server(practice_lab: Lab, name: str) -> None:
    payload = SHARING[name]
    data = "0x" + payload.body(0x1CEB00DA, bytes(map(int, practice.SCANNER.split(".")))).hex()
    states = udp_states(practice_lab, ["--data", data, "-p", str(payload.ports[0]), UDPSRV])
    assert states[UDPSRV][payload.ports[0]] == ("open", "udp-response")


def test_our_own_payloads_with_the_cookie_in_their_id_fields_are_answered(practice_lab: Lab) -> None:
    # One scan of every payload's port: each real server must answer our request, with its ID checked.
    ports = ",".join(map(str, sorted(UDPSRV_OPEN)))
    states = udp_states(practice_lab, ["--no-nmap-payloads", "-p", ports, UDPSRV])
    assert states[UDPSRV] == {p: ("open", "udp-response") for p in UDPSRV_OPEN}


def test_ipv6_udp_scan_of_the_udp_server(practice_lab: Lab) -> None:
    states = udp_states(practice_lab, ["-6", "-p", "53,123,161,514,40000", UDPSRV6])
    assert states[UDPSRV6] == {53: ("open", "udp-response"), 123: ("open", "udp-response"),
                               161: ("open", "udp-response"), 514: ("open|filtered", "no-response"),
                               40000: ("closed", "port-unreach")}


def test_combined_tcp_and_udp_output_reads_as_nmaps(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-sS", "-sU", "-Pn", "-n", "-p", "T:22,80,U:53,161,5353",
                                      "-oX", "/dev/null", practice.IOT], timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if "/udp" in line or "/tcp" in line}
    assert rows["53/udp"] == ["closed", "domain"] and rows["5353/udp"] == ["open", "zeroconf"]
    assert rows["80/tcp"] == ["open", "http"]
    xml = scan_in_lab(practice_lab, [LEADLINE, "-sS", "-sU", "-Pn", "-n", "-p", "T:22,80,U:53,161,5353",
                                     "-oX", "-", practice.IOT], timeout=120).stdout
    root = ET.fromstring(xml)
    assert {(s.get("type"), s.get("protocol")) for s in root.findall("scaninfo")} == {("syn", "tcp"), ("udp", "udp")}
    assert {p.get("protocol") for p in root.iter("port")} == {"tcp", "udp"}
