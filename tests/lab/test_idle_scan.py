"""The idle scan in the practice lab, through the legacy device (198.18.1.75) as its zombie.

The course server must show the same open ports as a direct scan, and a
capture in its own namespace must see no packet from the scanner's address
while the idle scan runs (the SYNs it gets come from the zombie).  The
same holds with the zombie's background traffic on; a Linux host (all-zero
IDs on its RSTs) is refused in one line; and nmap's own -sI through the
same zombie gives the same states (tests/oracle/test_idle_vs_nmap.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from leadline.lab.legacy import LEGACY, set_chatter, set_ipid_mode
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import read_states

pytestmark = [pytest.mark.lab, pytest.mark.serial]  # the zombie has one IP ID counter: any other scan of the lab beside it would move it

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = "1-1024,49990-50010"

# Counts the IPv4 packets addressed to the course server's interface, by source address and protocol,
# until SIGTERM; then prints them as JSON.
_CAPTURE = r'''
import json, signal, socket, sys
counts = {}
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sock.bind(("eth0", 0))
def done(*_):
    print(json.dumps(counts), flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, done)
print("ready", flush=True)
while True:
    data, where = sock.recvfrom(65535)
    # Outgoing frames (4) are the server's own; a frame for another host (3) is one the lab's bridge
    # flooded while it had not yet learnt where that host is (the zombie probes, say).
    if where[2] in (3, 4) or len(data) < 34:
        continue
    key = ".".join(str(b) for b in data[26:30]) + "/" + str(data[23])
    if data[23] == 6 and key.startswith(sys.argv[1] + "/"):  # from the scanner: say which segment
        at = 14 + (data[14] & 15) * 4
        key += " %d>%d flags %#x" % (int.from_bytes(data[at:at + 2], "big"), int.from_bytes(data[at + 2:at + 4], "big"), data[at + 13])
    counts[key] = counts.get(key, 0) + 1
'''


@pytest.fixture(scope="module")
def lab(practice_lab: Lab) -> Lab:
    return practice_lab


@pytest.fixture(scope="module")
def direct_open(lab: Lab) -> set[int]:
    done = scan_in_lab(lab, [LEADLINE, "-sS", "-Pn", "-n", "-p", PORTS, "-oX", "-", practice.COURSE])
    assert done.returncode == 0, done.stderr
    states = read_states(done.stdout)[practice.COURSE]
    return {port for (_proto, port), verdict in states.ports.items() if verdict[0] == "open"}


@pytest.fixture
def capture(lab: Lab) -> Iterator[subprocess.Popen[bytes]]:
    process = lab.popen("course", [sys.executable, "-c", _CAPTURE, practice.SCANNER], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(5)


def _stop_capture(process: subprocess.Popen[bytes]) -> dict[str, int]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    counts: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return counts


def _idle_scan(lab: Lab) -> tuple[dict[int, tuple[str, str]], str]:
    done = scan_in_lab(lab, [LEADLINE, "-sI", LEGACY, "-Pn", "-n", "-p", PORTS, "-oX", "-", practice.COURSE],
                       timeout=180)
    assert done.returncode == 0, done.stderr
    states = read_states(done.stdout)[practice.COURSE]
    return {port: v for (_proto, port), v in states.ports.items()}, done.stdout


def _check(states: dict[int, tuple[str, str]], expected_open: set[int]) -> None:
    assert {p for p, v in states.items() if v[0] == "open"} == expected_open
    assert all(v == ("closed|filtered", "no-ipid-change") for p, v in states.items() if p not in expected_open)
    assert all(states[p] == ("open", "ipid-change") for p in expected_open)


def test_idle_scan_finds_the_direct_scans_open_ports_without_a_packet_from_us(
        lab: Lab, direct_open: set[int], capture: subprocess.Popen[bytes]) -> None:
    assert direct_open == {practice.COURSE_ECHO_PORT, practice.COURSE_HTTP_PORT}
    states, xml = _idle_scan(lab)
    counts = _stop_capture(capture)
    _check(states, direct_open)
    assert '<scaninfo type="idle"' in xml
    assert not [key for key in counts if key.startswith(practice.SCANNER + "/")], counts
    assert counts.get(f"{LEGACY}/6", 0) >= 1000, counts  # the forged SYNs arrived, in the zombie's name


def test_background_traffic_at_the_zombie_changes_nothing(
        lab: Lab, direct_open: set[int], capture: subprocess.Popen[bytes]) -> None:
    set_chatter(lab.state_dir, 5)
    try:
        time.sleep(1.5)  # the device reads its rate once a second
        states, _ = _idle_scan(lab)
    finally:
        set_chatter(lab.state_dir, 0)
    counts = _stop_capture(capture)
    assert counts.get(f"{LEGACY}/17", 0) >= 3, counts  # its broadcasts were on the wire meanwhile
    _check(states, direct_open)


def test_normal_output_names_the_zombie(lab: Lab) -> None:
    done = scan_in_lab(lab, [LEADLINE, "-sI", f"{LEGACY}:80", "-Pn", "-n", "-p", "50005-50010", practice.COURSE])
    assert done.returncode == 0, done.stderr
    assert f"Idle scan using zombie {LEGACY} ({LEGACY}:80); Class: Incremental\n" in done.stdout
    assert "50007/tcp open" in done.stdout and "50008/tcp open" in done.stdout


def test_a_linux_host_is_refused_as_zombie_in_one_line(lab: Lab) -> None:
    done = scan_in_lab(lab, [LEADLINE, "-sI", practice.IOT, "-Pn", "-n", "-p", "80", practice.COURSE])
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "IP ID sequence class is: All zeros" in done.stderr and "try another zombie" in done.stderr


def test_idle_scan_without_pn_says_so(lab: Lab) -> None:
    done = scan_in_lab(lab, [LEADLINE, "-sI", LEGACY, "-n", "-p", "80", practice.COURSE])
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "needs -Pn" in done.stderr


def test_a_zombie_counting_per_destination_is_refused_in_one_line(lab: Lab) -> None:
    set_ipid_mode(lab.state_dir, "per-destination")
    try:
        time.sleep(1.5)  # the device reads its mode once a second
        done = scan_in_lab(lab, [LEADLINE, "-sI", LEGACY, "-Pn", "-n", "-p", "80", practice.COURSE])
    finally:
        set_ipid_mode(lab.state_dir, "incremental")
        time.sleep(1.5)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "counts packets to each destination separately" in done.stderr
