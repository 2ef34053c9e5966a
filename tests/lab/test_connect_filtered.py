"""The connect scan of a host that drops every port but a handful, in the practice lab.

The Windows-like host (198.18.1.30) accepts five ports and silently drops
the rest.  A connect scan there is a long wait for silence; these tests
check that the answer is exact, and that waiting under --max-rate is a
quiet wait (the process sleeps in epoll instead of spinning), by CPU time
over wall time with a wide margin rather than by the clock.
"""

from __future__ import annotations

import json
import sys

import pytest

from leadline.lab import practice
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import read_states

pytestmark = pytest.mark.lab

LEADLINE = [sys.executable, "-m", "leadline"]

# Runs in the scanner namespace: a rate-capped connect scan of the dropping
# host, with the CPU time and wall time it took.
CAPPED_DRIVER = r"""
import dataclasses, json, resource, sys, time
from leadline.config import TIMING_TEMPLATES
from leadline.engines.connect import connect_scan

job = json.loads(sys.argv[1])
timing = dataclasses.replace(TIMING_TEMPLATES[4], max_rate=job["max_rate"])
results = []
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.monotonic()
connect_scan([job["host"]], list(range(1, job["ports"] + 1)), timing, on_host_done=results.append)
wall = time.monotonic() - started
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
opened = [p.port for p in results[0].ports if p.state.value == "open"]
filtered = sum(1 for p in results[0].ports if p.state.value == "filtered" and p.reason.value == "no-response")
print(json.dumps({"wall": wall, "cpu": cpu, "open": opened, "filtered": filtered, "count": len(results[0].ports)}))
"""


def _truth(ports: range | list[int]) -> dict[int, tuple[str, str]]:
    return {
        port: ("open", "syn-ack") if port in practice.WINDOWS_OPEN_PORTS else ("filtered", "no-response")
        for port in ports
    }


def _scan(lab, flags: list[str]) -> dict[int, tuple[str, str]]:  # type: ignore[no-untyped-def]
    done = scan_in_lab(lab, [*LEADLINE, *flags, "-oX", "-", practice.WINDOWS], timeout=180)
    assert done.returncode == 0, done.stderr
    host = read_states(done.stdout)[practice.WINDOWS]
    return {port: state for (proto, port), state in host.ports.items() if proto == "tcp"}


def test_first_2000_ports_match_the_truth(practice_lab) -> None:  # type: ignore[no-untyped-def]
    found = _scan(practice_lab, ["-sT", "-n", "-Pn", "-p", "1-2000"])
    assert found == _truth(range(1, 2001))


def test_top_1000_ports_match_the_truth(practice_lab) -> None:  # type: ignore[no-untyped-def]
    found = _scan(practice_lab, ["-sT", "-n", "-Pn"])
    assert len(found) == 1000
    assert found == _truth(list(found))
    assert sorted(p for p, (state, _) in found.items() if state == "open") == sorted(practice.WINDOWS_OPEN_PORTS)


@pytest.mark.serial  # a CPU/wall ratio: CPU taken by another test beside it skews it
def test_rate_capped_scan_waits_without_spinning(practice_lab) -> None:  # type: ignore[no-untyped-def]
    # 400 ports, each dropped one gets a retransmission: about 800 attempts
    # at 200 a second, so a few seconds mostly spent waiting for the pacer
    # and for timeouts.  Spinning in epoll shows as CPU near 100% of a core.
    job = {"host": practice.WINDOWS, "ports": 400, "max_rate": 200}
    done = scan_in_lab(practice_lab, [sys.executable, "-c", CAPPED_DRIVER, json.dumps(job)], timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["count"] == 400
    assert out["open"] == [135, 139]
    assert out["filtered"] == 398
    assert out["wall"] >= 2.0  # the cap held: 400 first attempts alone need 2 s at 200/s
    assert out["cpu"] / out["wall"] < 0.2, out
