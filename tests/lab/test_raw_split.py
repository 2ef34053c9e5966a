"""A raw scan split across worker processes, in the practice lab's scanner namespace.

What the split must keep: every port decided exactly once with the state a
single-process scan gives; each worker's BPF filter passes only the TCP
replies of its own ports; a stop reaches every worker; no process is left.
"""

from __future__ import annotations

import json
import sys

import pytest

from leadline.lab import Lab, practice

pytestmark = [pytest.mark.lab]

_DRIVER = r'''
import json, os, secrets, sys, threading, time
from leadline.config import TIMING_TEMPLATES
from leadline.config import ScanType
from leadline.core.probes.base import ProbeContext
from leadline.scantypes import probe_module
from leadline.core.ratecontrol import RateController
from leadline.core.session import HostDone, PortDecided, ScanSession
from leadline.engines.raw import run_raw_scan, source_address_for
from leadline.engines.rawsplit import split_raw_scan

target, low, high, workers, stop_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ports = list(range(low, high + 1))
timing = TIMING_TEMPLATES[4]
ctx = ProbeContext(source_address_for(target), secrets.token_bytes(16))
module = probe_module(ScanType.SYN, None)
pids = []

def make_session(share, share_timing):
    pids.append(os.getpid())
    return ScanSession.for_group(module, ctx, [target], share, share_timing, RateController.from_timing(share_timing), explain=False)

decided, done = [], []
def on_event(event):
    if isinstance(event, PortDecided):
        decided.append([event.port, event.verdict.state.value, event.verdict.reason.value])
    elif isinstance(event, HostDone):
        done.append(event.address)

stop = threading.Event()
if stop_after > 0:
    threading.Timer(stop_after, stop.set).start()
started = time.monotonic()
if workers > 1:
    split_raw_scan(make_session, ports, timing, workers, family=4, on_event=on_event, stop=stop)
else:
    run_raw_scan(make_session(ports, timing), family=4, on_event=on_event, stop=stop)
elapsed = time.monotonic() - started
children = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
print(json.dumps({"decided": decided, "done": done, "children": children, "elapsed": elapsed}))
'''


def _drive(lab: Lab, low: int, high: int, workers: int, stop_after: float = 0.0) -> dict:
    done = lab.run(lab.scanner, [sys.executable, "-c", _DRIVER, practice.COURSE, str(low), str(high), str(workers), str(stop_after)],
                   timeout=90)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_split_scan_decides_every_port_once_as_one_process_does(practice_lab: Lab) -> None:
    single = _drive(practice_lab, 1, 20000, 1)
    split = _drive(practice_lab, 1, 20000, 3)
    ports = [row[0] for row in split["decided"]]
    assert len(ports) == len(set(ports)) == 20000
    assert {row[0]: row[1:] for row in split["decided"]} == {row[0]: row[1:] for row in single["decided"]}
    assert split["done"] == [practice.COURSE]  # once, after all three workers finished it
    assert split["children"] == []
    print(f"\n-sS 1-20000: one process {single['elapsed']:.2f} s, three {split['elapsed']:.2f} s")


def test_the_open_and_dropped_ports_come_back_from_their_own_worker(practice_lab: Lab) -> None:
    split = _drive(practice_lab, 49990, 50020, 2)
    states = {row[0]: tuple(row[1:]) for row in split["decided"]}
    assert states[practice.COURSE_ECHO_PORT] == ("open", "syn-ack")  # 50007, odd: worker 1
    assert states[50008] == ("open", "syn-ack")  # even: worker 0
    assert states[50003] == ("filtered", "no-response")
    assert states[49990] == ("closed", "reset")
    assert len(states) == 31


@pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
def test_a_stop_reaches_every_worker_and_leaves_no_process(practice_lab: Lab) -> None:
    # Every port of the course server takes over a second: stopped at 0.3 s, the scan is cut short.
    split = _drive(practice_lab, 1, 65535, 2, stop_after=0.3)
    assert split["children"] == []
    assert 0 < len(split["decided"]) < 65535
    assert split["elapsed"] < 5


_FILTER_PROBE = r'''
import json, socket, sys, time
from leadline.engines.packetio import attach_filter, protocol_filter
target = sys.argv[1]
receiver = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
attach_filter(receiver, protocol_filter(4, (6, 1), outgoing=False, share=(1, 2)))
receiver.settimeout(0.2)
while True:  # what arrived before the filter was attached
    try:
        receiver.recv(65535)
    except socket.timeout:
        break
for port in range(20, 30):  # closed ports: each answers with an RST from that port
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((target, port))
    except OSError:
        pass
    s.close()
seen = []
while True:
    try:
        data = receiver.recv(65535)
    except socket.timeout:
        break
    ihl = (data[0] & 15) * 4
    if data[9] == 6:
        seen.append(int.from_bytes(data[ihl:ihl + 2], "big"))
print(json.dumps(seen))
'''


def test_a_workers_filter_passes_only_replies_from_its_own_ports(practice_lab: Lab) -> None:
    done = practice_lab.run(practice_lab.scanner, [sys.executable, "-c", _FILTER_PROBE, practice.COURSE], timeout=30)
    assert done.returncode == 0, done.stderr
    seen = set(json.loads(done.stdout))
    # Other tests share the practice lab and may draw segments from other ports meanwhile
    # (once 50007): whatever passed must be odd, and every odd port of ours must have passed.
    assert all(port % 2 == 1 for port in seen), sorted(seen)
    assert sorted(port for port in seen if 20 <= port < 30) == [21, 23, 25, 27, 29]
