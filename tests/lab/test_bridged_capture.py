"""On a bridged scanner the capture hands the session each reply once (a lab of its own, prefix "pbr").

The scanner's interface is a Linux bridge with the targets' veths
enslaved to it, as on hypervisors and container hosts (see
``leadline.lab.bridged``).  A packet socket that is not bound to an
interface sees every frame there twice; the engines' capture is bound to
the interface the route uses.  The driver counts, per (address, port),
the probes the session sent and the replies the capture loop handed it,
and lets an unbound witness socket count what it saw, to show the lab
really duplicates frames.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from leadline.lab import Lab
from leadline.lab.bridged import bridge_the_scanner, bridged_scanner_topology

pytestmark = [pytest.mark.lab]

PREFIX = "pbr"
NETWORK = "198.18.74"
TARGETS = [f"{NETWORK}.10", f"{NETWORK}.11"]
PORTS = 300

DRIVER = r"""
import json, socket, sys, threading
from collections import Counter
from leadline.config import TIMING_TEMPLATES, ScanType
from leadline.core.probes.base import ProbeContext
from leadline.scantypes import probe_module as module_for
from leadline.core.ratecontrol import RateController
from leadline.core.session import ScanSession
from leadline.engines.packetio import attach_filter, protocol_filter
from leadline.engines.raw import run_raw_scan, source_address_for

targets, ports = sys.argv[1].split(","), list(range(1, int(sys.argv[2]) + 1))
timing = TIMING_TEMPLATES[4]
ctx = ProbeContext(source_address_for(targets[0]), b"0123456789abcdef")
session = ScanSession.for_group(module_for(ScanType.SYN, None), ctx, targets, ports, timing,
                                RateController.from_timing(timing), explain=False)
witness = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
witness.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: room for every copy
attach_filter(witness, protocol_filter(4, (6,), outgoing=False))
witness.setblocking(False)
while True:
    try: witness.recv(65535)
    except BlockingIOError: break
sent, handed = Counter(), Counter()
due, receive_many = session.due, session.receive_many
def counting_due(now):
    probes = due(now)
    for probe in probes:
        sent[f"{probe.key.address}:{probe.key.port}"] += 1
    return probes
def counting_receive_many(datagrams, now):  # every reply reaches the session here (receive is a batch of one)
    for datagram in datagrams:
        if len(datagram) >= 24 and datagram[9] == 6:
            handed[f"{socket.inet_ntoa(datagram[12:16])}:{int.from_bytes(datagram[20:22], 'big')}"] += 1
    return receive_many(datagrams, now)
session.due, session.receive_many = counting_due, counting_receive_many
stop = threading.Event()
watchdog = threading.Timer(50, stop.set); watchdog.daemon = True; watchdog.start()
states = Counter()
run_raw_scan(session, on_event=lambda e: states.update([type(e).__name__]), stop=stop)
seen = 0
while True:
    try: witness.recv(65535)
    except BlockingIOError: break
    seen += 1
print(json.dumps({"sent": sent, "handed": handed, "witness": seen, "events": states}))
"""


@pytest.fixture(scope="module")
def bridged_lab() -> Iterator[Lab]:
    topology = bridged_scanner_topology(NETWORK, len(TARGETS))
    lab = Lab(PREFIX)
    try:
        lab.up(topology)
        bridge_the_scanner(lab, topology, f"{NETWORK}.2/24")
        yield lab
    finally:
        lab.down()


def test_the_bridge_really_duplicates_frames_for_an_unbound_socket_but_the_capture_hands_each_reply_once(
    bridged_lab: Lab,
) -> None:
    done = bridged_lab.run("scanner", [sys.executable, "-c", DRIVER, ",".join(TARGETS), str(PORTS)], timeout=90)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    sent, handed = found["sent"], found["handed"]
    assert found["events"]["PortDecided"] == PORTS * len(TARGETS)
    assert len(sent) == PORTS * len(TARGETS)
    # Every port is closed: each probe gets one RST, and the session is handed exactly that one.
    assert handed == sent
    # The lab means something: an unbound socket saw each reply twice.
    assert found["witness"] >= 2 * sum(handed.values()) * 0.95


SWEEP_DRIVER = r"""
import json, sys
from collections import Counter
from leadline.config import TIMING_TEMPLATES, DiscoveryProbe
from leadline.core.discoverysession import DiscoverySession
from leadline.engines.discovery import raw_discover

sent, handed = Counter(), Counter()
due, receive = DiscoverySession.due, DiscoverySession.receive
def counting_due(self, now):
    probes = due(self, now)
    sent.update(out.address for out in probes)
    return probes
def counting_receive(self, datagram, now, **kw):
    if len(datagram) >= 20 and datagram[9] == 1:
        handed[".".join(str(b) for b in datagram[12:16])] += 1
    return receive(self, datagram, now, **kw)
DiscoverySession.due, DiscoverySession.receive = counting_due, counting_receive
results = list(raw_discover(sys.argv[1:], (DiscoveryProbe("echo"), DiscoveryProbe("syn", (443,))), TIMING_TEMPLATES[4], arp=False))
print(json.dumps({"up": [r.address for r in results if r.up], "sent": sent, "handed": handed}))
"""


def test_a_sweep_from_the_bridge_hands_each_echo_reply_once(bridged_lab: Lab) -> None:
    done = bridged_lab.run("scanner", [sys.executable, "-c", SWEEP_DRIVER, *TARGETS], timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["up"] == TARGETS
    assert found["sent"] == {address: 1 for address in TARGETS}  # up at the echo reply: no SYN followed
    assert found["handed"] == {address: 1 for address in TARGETS}


DROPS_DRIVER = r"""
import json, socket, struct, sys, time
from leadline.engines import packetio

packetio._RECEIVE_BUFFER = 4096  # the kernel's minimum: a burst of replies overflows it
capture = packetio.Capture(4, (1,), needs="root")
capture.listen("br0")
def csum(data):
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data)); s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
pinger = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
count = int(sys.argv[2])
for seq in range(count):
    body = struct.pack("!BBHHH", 8, 0, 0, 4242, seq) + bytes(56)
    pinger.sendto(body[:2] + struct.pack("!H", csum(body)) + body[4:], (sys.argv[1], 0))
time.sleep(0.3)
dropped = capture.drops()
replies = sum(1 for d in capture.datagrams(10 * count) if d[20] == 0)
print(json.dumps({"dropped": dropped, "replies": replies, "again": capture.drops()}))
capture.close()
"""


def test_the_capture_counts_the_replies_the_kernel_dropped(bridged_lab: Lab) -> None:
    done = bridged_lab.run("scanner", [sys.executable, "-c", DROPS_DRIVER, TARGETS[0], "200"], timeout=30)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["dropped"] > 0, "a full buffer must show as drops"
    assert found["replies"] + found["dropped"] == 200  # every echo reply was either queued or counted as dropped
    assert found["again"] == 0  # the counters restart once read
