"""The router chain of ``leadline.lab.chain`` as a test fixture, and reading routes out of nmap-format XML."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab
from leadline.lab.chain import chain_topology
from tests.conftest import PRACTICE_PREFIX

LEADLINE = str(Path(sys.executable).parent / "leadline")
CHAIN_PREFIX = (PRACTICE_PREFIX + "c")[:8]

Route = list[tuple[int, str]]


@pytest.fixture(scope="session")
def chain_lab() -> Iterator[Lab]:
    """The chain, built once and removed at the end of the session.

    Every module importing this fixture gets a fixture of its own, but the
    second finds the chain up and healthy and reuses it (``Lab.up``); the
    modules are one group in conftest.SHARED_LABS, so they run on one worker.
    """
    if os.geteuid() != 0:
        pytest.fail("the traceroute lab tests need root (network namespaces)", pytrace=False)
    lab = Lab(CHAIN_PREFIX)
    try:
        lab.up(chain_topology())
        yield lab
    finally:
        lab.down()


def run(lab: Lab, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command in the lab's scanner namespace; fails the test on a non-zero exit."""
    done = lab.run(lab.scanner, argv, timeout=timeout)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done


def routes_from_xml(text: str) -> dict[str, Route]:
    """address -> the answering hops of its <trace>, as (ttl, address) in TTL order."""
    routes: dict[str, Route] = {}
    for host in ET.fromstring(text).iter("host"):
        address = host.find("address")
        trace = host.find("trace")
        if address is None or trace is None:
            continue
        routes[address.get("addr", "")] = [(int(h.get("ttl", "0")), h.get("ipaddr", "")) for h in trace.iter("hop")]
    return routes


def trace_ports_from_xml(text: str) -> dict[str, tuple[str | None, str | None]]:
    """address -> (proto, port) attributes of its <trace>."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for host in ET.fromstring(text).iter("host"):
        address, trace = host.find("address"), host.find("trace")
        if address is not None and trace is not None:
            out[address.get("addr", "")] = (trace.get("proto"), trace.get("port"))
    return out
