"""The raw discovery engine against real kernels, in a lab of its own (prefix: the suite's + "hd").

    segment "near" 198.18.60.0/24: scanner .2, pi .10 (a Raspberry Pi MAC),
        quiet .20 (drops every IP packet: only ARP sees it), forger .30
        (sends forged and malformed replies), router .1
    segment "far" 198.18.61.0/24: router .1, far .10 (routed: no ARP, no MAC)

Nothing answers for 198.18.60.50.  The engine runs in the scanner namespace
through a small driver that prints its results as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import pytest

from leadline.lab import Host, Interface, Lab, Route, Rule, Topology
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab]

PREFIX = lab_prefix("hd")
SCANNER, ROUTER, PI, QUIET, FORGER, NOBODY = "198.18.60.2", "198.18.60.1", "198.18.60.10", "198.18.60.20", "198.18.60.30", "198.18.60.50"
FAR = "198.18.61.10"
PI_MAC = "b8:27:eb:60:00:10"

DRIVER = r"""
import json, sys
from leadline.config import TIMING_TEMPLATES, DiscoveryProbe
from leadline.engines.discovery import raw_discover
spec = json.loads(sys.argv[1])
probes = tuple(DiscoveryProbe(kind, tuple(ports)) for kind, ports in spec["probes"])
results = raw_discover(spec["targets"], probes, TIMING_TEMPLATES[4], arp=spec["arp"], attempts=spec.get("attempts"))
print(json.dumps([[r.address, r.up, r.reason.value, r.ttl, r.mac] for r in results]))
"""

# Forged and malformed packets aimed at the scanner, for ``seconds``: echo
# replies and RSTs "from" addresses that never answer (wrong cookies),
# truncated headers and garbage.
FORGER_SCRIPT = r"""
import os, random, socket, struct, sys, time
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data)); s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
def ip(src, dst, proto, payload, length=None):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length or 20 + len(payload), 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload
def icmp(kind, ident, seq, body=b"leadline"):
    m = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
target, victims = sys.argv[1], sys.argv[2].split(",")
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    for v in victims:
        packets = [
            ip(v, target, 1, icmp(0, random.getrandbits(16), random.getrandbits(16))),   # echo reply, wrong cookie
            ip(v, target, 1, icmp(14, random.getrandbits(16), random.getrandbits(16), bytes(12))),  # timestamp reply
            ip(v, target, 6, struct.pack("!HHIIBBHHH", 443, random.getrandbits(16), random.getrandbits(32), random.getrandbits(32), 0x50, 0x14, 0, 0, 0)),
            ip(v, target, 1, b"\x00"),                                                     # truncated ICMP
            ip(v, target, 6, b"\x01\xbb\x00", length=1200),                               # lying length
            ip(v, target, 1, icmp(3, 0, 0, ip(target, v, 1, icmp(8, 1, 1))[:28])),          # unreachable quoting a probe we never sent
        ]
        for p in packets:
            try: sock.sendto(p, (target, 0))
            except OSError: pass
    time.sleep(0.002)
"""


def topology() -> Topology:
    quiet_rules = (Rule("INPUT", "-j DROP"),)
    return Topology(
        "discovery-test",
        (
            Host("scanner", (Interface("near", f"{SCANNER}/24", "02:4c:11:60:00:02"),), routes=(Route("198.18.61.0/24", via=ROUTER),)),
            Host("router", (Interface("near", f"{ROUTER}/24"), Interface("far", "198.18.61.1/24")), forwarding=True),
            Host("pi", (Interface("near", f"{PI}/24", PI_MAC),), routes=(Route("198.18.61.0/24", via=ROUTER),)),
            Host("quiet", (Interface("near", f"{QUIET}/24"),), firewall=quiet_rules),
            Host("forger", (Interface("near", f"{FORGER}/24"),)),
            Host("far", (Interface("far", f"{FAR}/24"),), routes=(Route("198.18.60.0/24", via="198.18.61.1"),)),
        ),
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    built = Lab(PREFIX)
    try:
        built.up(topology())
        yield built
    finally:
        built.down()


def discover(lab: Lab, targets: list[str], probes: list[tuple[str, list[int]]], *, arp: bool,
             attempts: int | None = None) -> dict[str, tuple[bool, str, int | None, str | None]]:
    spec = {"targets": targets, "probes": probes, "arp": arp, "attempts": attempts}
    done = lab.run("scanner", [sys.executable, "-c", DRIVER, json.dumps(spec)], timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row[0] for row in rows] == list(dict.fromkeys(targets)), "one result per target, in target order"
    return {address: (up, reason, ttl, mac) for address, up, reason, ttl, mac in rows}


def test_arp_on_the_segment_and_ip_probes_beyond_it(lab: Lab) -> None:
    found = discover(lab, [PI, QUIET, NOBODY, SCANNER, FAR], [], arp=True)
    assert found[PI] == (True, "arp-response", 0, PI_MAC.upper())
    assert found[QUIET][:2] == (True, "arp-response")  # IP is dropped, but the kernel still answers ARP
    assert found[NOBODY][:2] == (False, "no-response")
    assert found[SCANNER] == (True, "localhost-response", None, None)
    assert found[FAR] == (True, "echo-reply", 63, None)  # routed: one hop lowers the TTL, no MAC


def test_disabled_arp_uses_ip_probes_and_still_learns_the_mac(lab: Lab) -> None:
    found = discover(lab, [PI, QUIET, FAR], [], arp=False)
    assert found[PI] == (True, "echo-reply", 64, PI_MAC.upper())  # the reply frame's source address
    assert found[QUIET][:2] == (False, "no-response")
    assert found[FAR][:2] == (True, "echo-reply")


def test_tcp_probes_alone(lab: Lab) -> None:
    found = discover(lab, [PI, QUIET], [("syn", [22]), ("ack", [80])], arp=False)
    assert found[PI][:2] == (True, "reset")
    assert found[QUIET][0] is False


def test_a_lost_first_round_is_retransmitted(lab: Lab) -> None:
    tag = "llhd-every-other"
    lab.add_rule("pi", "INPUT", ["-p", "icmp", "--icmp-type", "echo-request", "-m", "statistic",
                                 "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP"], tag)
    try:
        once = discover(lab, [PI], [("echo", [])], arp=False, attempts=1)
        twice = discover(lab, [PI], [("echo", [])], arp=False, attempts=2)
    finally:
        lab.clear_rules("pi", tag)
    assert once[PI][:2] == (False, "no-response")  # the nth rule dropped the only request
    assert twice[PI][:2] == (True, "echo-reply")  # ... and let the retransmission through


def forged_packets_seen(lab: Lab, tag: str) -> int:
    listing = lab.run("scanner", ["iptables", "-nvxL", "INPUT"], timeout=10).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if f"leadline:{tag}" in line)


def test_forged_and_malformed_replies_are_ignored(lab: Lab) -> None:
    silent_far = FAR.replace(".10", ".99")
    tag = "llhd-forged"
    lab.add_rule("scanner", "INPUT", ["-s", NOBODY], tag)  # counts what the forger delivers
    forger = lab.popen("forger", [sys.executable, "-c", FORGER_SCRIPT, SCANNER, f"{NOBODY},{silent_far}", "20"])
    try:
        time.sleep(0.3)
        found = discover(lab, [NOBODY, silent_far, PI], [], arp=False)
        seen = forged_packets_seen(lab, tag)
    finally:
        forger.kill()
        forger.wait(timeout=10)
        lab.clear_rules("scanner", tag)
    assert seen > 100, "the forged packets must reach the scanner for this test to mean anything"
    assert found[NOBODY][:2] == (False, "no-response")
    assert found[silent_far][0] is False
    assert found[PI][:2] == (True, "echo-reply")


def test_a_whole_segment_streams_in_order(lab: Lab) -> None:
    targets = [f"198.18.60.{i}" for i in range(256)]
    found = discover(lab, targets, [], arp=True)
    assert {a for a, (is_up, *_rest) in found.items() if is_up} == {ROUTER, SCANNER, PI, QUIET, FORGER}
