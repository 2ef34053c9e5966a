"""Many-host scans use both cores (a lab of its own, prefix: the suite's + "sw").

The target answers for every address of a routed /18 (16,384 hosts), one
router away.  Past ``WORKER_AFTER`` addresses a sweep's engine is forked off
and the scanning process writes hosts beside it; a SYN scan of one port over
the range is shared out by host among worker processes.  The results must
be the ones one process gives, in the same order, and nmap's.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab
from leadline.lab.topology import routed_range_topology
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab]

PREFIX = lab_prefix("sw")
SWEPT = "198.19.0.0/18"
HOSTS = 16384
LEADLINE = str(Path(sys.executable).parent / "leadline")

# Both paths over the same addresses in one process: which one SystemEngines chose, and what each found.
DRIVER = r"""
import ipaddress, json, os, sys, threading, time
from leadline.config import TIMING_TEMPLATES
from leadline.engines.discovery import raw_discover
from leadline.pipeline.engines import SystemEngines
swept, mode = sys.argv[1], sys.argv[2]
timing = TIMING_TEMPLATES[3]
addresses = [str(a) for a in ipaddress.ip_network(swept)]
out = {}
if mode == "compare":
    chosen = SystemEngines().raw_discover(iter(addresses), [], timing, arp=True, stop=threading.Event(), evidence=None)
    out["worker"] = chosen.gi_code.co_name
    out["split"] = [(r.address, r.up, r.reason.value, r.ttl) for r in chosen]
    short = SystemEngines().raw_discover(iter(addresses[:100]), [], timing, arp=True, stop=threading.Event(),
                                         evidence=None)
    out["short"] = getattr(short, "gi_code", None) and short.gi_code.co_name
    out["one"] = [(r.address, r.up, r.reason.value, r.ttl) for r in raw_discover(addresses, [], timing)]
else:
    stop = threading.Event()
    got, started = 0, time.monotonic()
    for r in SystemEngines().raw_discover(iter(addresses), [], timing, arp=True, stop=stop, evidence=None):
        got += 1
        if got == 100:
            stop.set()
            stopped = time.monotonic()
    out["got"], out["after_stop"] = got, time.monotonic() - stopped
    try:
        os.waitpid(-1, os.WNOHANG)
        out["children"] = "some"
    except ChildProcessError:
        out["children"] = "none"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    built = Lab(PREFIX)
    try:
        built.up(routed_range_topology(SWEPT, network="198.18.78"))
        yield built
    finally:
        built.down()


def _drive(lab: Lab, mode: str) -> dict[str, object]:
    done = lab.run("scanner", [sys.executable, "-c", DRIVER, SWEPT, mode], timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_worker_gives_what_one_process_gives_in_the_same_order(lab: Lab) -> None:
    out = _drive(lab, "compare")
    assert out["worker"] == "discover_in_worker"
    assert out["short"] == "run_discovery"  # 100 addresses: no worker
    split, one = out["split"], out["one"]
    assert isinstance(split, list) and isinstance(one, list)
    assert len(split) == len(one) == HOSTS
    assert [row[0] for row in split] == [row[0] for row in one]  # target order, every address once
    assert all(row[1] for row in split) and all(row[1] for row in one)
    assert {tuple(row[1:]) for row in split} == {tuple(row[1:]) for row in one} == {(True, "echo-reply", 63)}


def test_a_stopped_sweep_ends_at_once_and_leaves_no_worker(lab: Lab) -> None:
    out = _drive(lab, "stop")
    assert isinstance(out["got"], int) and 100 <= out["got"] < HOSTS
    assert isinstance(out["after_stop"], float) and out["after_stop"] < 3.0
    assert out["children"] == "none"


def _up(xml: str) -> list[str]:
    root = ET.fromstring(xml)
    return [h.find("address").get("addr", "") for h in root.iter("host")  # type: ignore[union-attr]
            if h.find("status").get("state") == "up"]  # type: ignore[union-attr]


def test_the_command_line_sweep_finds_what_nmap_finds(lab: Lab) -> None:
    ours = lab.run("scanner", [LEADLINE, "-sn", "-n", SWEPT, "-oX", "-"], timeout=120)
    theirs = lab.run("scanner", ["nmap", "-sn", "-n", SWEPT, "-oX", "-"], timeout=120)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    found = _up(ours.stdout)
    assert len(found) == HOSTS
    assert found == _up(theirs.stdout)  # the same hosts, in the same order


def _port_80(xml: str) -> list[tuple[str, str, str]]:
    root = ET.fromstring(xml)
    rows = []
    for host in root.iter("host"):
        state = host.find("ports/port/state")
        if state is not None:
            rows.append((host.find("address").get("addr", ""), state.get("state", ""), state.get("reason", "")))  # type: ignore[union-attr]
    return rows


def test_a_one_port_scan_of_the_range_shared_by_host_finds_what_nmap_finds(lab: Lab) -> None:
    ours = lab.run("scanner", [LEADLINE, "-sS", "-p80", "-n", "-Pn", SWEPT, "-oX", "-"], timeout=120)
    theirs = lab.run("scanner", ["nmap", "-sS", "-p80", "-n", "-Pn", SWEPT, "-oX", "-"], timeout=180)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    found = _port_80(ours.stdout)
    assert len(found) == HOSTS and {(state, reason) for _, state, reason in found} == {("closed", "reset")}
    assert found == _port_80(theirs.stdout)
