"""A SYN scan under a flood of forged SYN/ACKs stays exact (a lab of its own, prefix: the suite's + "fl").

Another host on the scanner's segment (the practice network's IoT
device) sends about 60,000 forged SYN/ACKs a second at the scanner,
claiming the course server's address, with random ports and sequence
numbers.  None may be taken for an answer (the cookies), and none of
the real RSTs the flood pushes out of the capture's buffer may turn a
closed port into 'filtered': the engine reads the kernel's drop
counters and the session retries what they may have taken.  Twenty
`-sS -p-` scans of the course server must each match nmap's clean scan.

The flood generator is ours: a raw socket in a loop over pre-built
packets, paced in 10 ms ticks, in a namespace this test builds; it stops
by itself after FLOOD_SECONDS and is also ended by pid when the test is done.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from leadline.lab.topology import Topology
from tests.oracle.nmapxml import diff_states, read_states
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab, pytest.mark.serial]  # the flood takes the CPU another test would be timed on

PREFIX = lab_prefix("fl")
RUNS = 20
RATE = 60_000
FLOOD_SECONDS = 240
LEADLINE = str(Path(sys.executable).parent / "leadline")
FLAGS = ["-sS", "-p-", "-n", "-Pn"]

FLOODER = r"""
import json, os, random, socket, struct, sys, time
src, dst, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
s, d = socket.inet_aton(src), socket.inet_aton(dst)
packets = []
for _ in range(8192):
    sport, dport = random.randrange(1, 65536), random.randrange(1024, 65536)
    seq, ack = random.getrandbits(32), random.getrandbits(32)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x12, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", checksum(struct.pack("!4s4sBBH", s, d, 0, 6, 20) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, random.randrange(65536), 0x4000, 64, 6, 0, s, d)
    packets.append(ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + tcp)
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
tick, per_tick = 0.01, rate // 100
started = time.monotonic()
sent = index = 0
print("ready", flush=True)
while time.monotonic() - started < seconds:
    for _ in range(per_tick):
        try:
            sock.sendto(packets[index], (dst, 0))
            sent += 1
        except OSError:
            pass
        index = (index + 1) & 8191
    pause = started + (sent // per_tick) * tick - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    if sent % (per_tick * 100) == 0:
        print(json.dumps({"sent": sent, "elapsed": time.monotonic() - started}), flush=True)
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    built = Lab(PREFIX)
    built.down()
    try:
        topology: Topology = practice.practice_topology()
        built.up(topology)
        yield built
    finally:
        built.down()


def scan_xml(lab: Lab, argv: list[str]) -> str:
    done = lab.run("scanner", [*argv, "-oX", "-"], timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_flood_of_forged_syn_acks_costs_no_port_its_state(lab: Lab) -> None:
    reference = read_states(scan_xml(lab, ["nmap", *FLAGS, practice.COURSE]))[practice.COURSE]
    flooder = lab.popen("iot", [sys.executable, "-c", FLOODER, practice.COURSE, practice.SCANNER, str(RATE),
                                str(FLOOD_SECONDS)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert flooder.stdout is not None and flooder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        wrong: dict[int, list[str]] = {}
        for run in range(RUNS):
            found = read_states(scan_xml(lab, [LEADLINE, *FLAGS, practice.COURSE]))[practice.COURSE]
            differences = diff_states(found, reference, True)
            if differences:
                wrong[run] = differences[:5]
        elapsed = time.monotonic() - started
        assert flooder.poll() is None, "the flood stopped before the scans ended"
    finally:
        flooder.terminate()
        out, _ = flooder.communicate(timeout=10)
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    achieved = max((r["sent"] / r["elapsed"] for r in reports if r["elapsed"] >= 1), default=0.0)
    print(f"{RUNS} scans in {elapsed:.1f} s under a flood of {achieved:.0f} forged SYN/ACKs a second")
    assert achieved >= 0.5 * RATE, f"the flood reached only {achieved:.0f} packets a second"
    assert wrong == {}
