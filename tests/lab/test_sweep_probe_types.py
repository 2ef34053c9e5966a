"""Four -P probe types over a routed range of answering hosts cost about one (a lab of its own, prefix: the suite's + "bs").

The target answers for every address of 198.19.0.0/22 (a ``local`` route),
one router away; iptables rules in the target count each probe type as it
arrives.  A host is up at its first answer, and the probes still due to
it are never sent: the echo request (first in the plan) is answered, so
the timestamp request, SYN and ACK should almost never leave.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab
from leadline.lab.topology import routed_range_topology
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab]

PREFIX = lab_prefix("bs")
SWEPT = "198.19.0.0/22"
HOSTS = 1024
LEADLINE = str(Path(sys.executable).parent / "leadline")
COUNTERS = {
    "echo": "-p icmp --icmp-type echo-request",
    "timestamp": "-p icmp --icmp-type timestamp-request",
    "syn": "-p tcp --dport 443 --tcp-flags SYN,ACK SYN",
    "ack": "-p tcp --dport 80 --tcp-flags SYN,ACK ACK",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    built = Lab(PREFIX)
    try:
        built.up(routed_range_topology(SWEPT))
        for kind, spec in COUNTERS.items():
            built.add_rule("target", "INPUT", spec.split(), f"count-{kind}")
        yield built
    finally:
        built.down()


def arrived(lab: Lab) -> dict[str, int]:
    listing = lab.run("target", ["iptables", "-nvxL", "INPUT"], timeout=10).stdout
    return {kind: sum(int(line.split()[0]) for line in listing.splitlines() if f"leadline:count-{kind}" in line)
            for kind in COUNTERS}


def test_four_probe_types_send_about_one_probe_per_answering_host(lab: Lab) -> None:
    started = time.monotonic()
    done = lab.run("scanner", [LEADLINE, "-sn", "-n", "-PE", "-PP", "-PS443", "-PA80", SWEPT], timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert f"({HOSTS} hosts up)" in done.stdout
    counts = arrived(lab)
    assert counts["echo"] == HOSTS  # every host got its echo request once: no loss, no retry
    others = counts["timestamp"] + counts["syn"] + counts["ack"]
    assert others <= HOSTS // 50, counts  # a host already up is not sent the rest (a few may race the answer)
    assert elapsed < 30
