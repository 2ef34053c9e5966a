"""Traceroute through real kernels: shared hops, a silent router, a refusing router, --host-timeout.

The router chain (``leadline.lab.chain``): r1, a router that sends no
time-exceeded, r3, then two targets four hops away; r3 refuses a fifth
network with ICMP unreachable.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from leadline.lab import Lab
from leadline.lab.chain import (
    CHAIN_R1,
    CHAIN_R3,
    CHAIN_REFUSED,
    CHAIN_REFUSED6,
    CHAIN_R3_6,
    CHAIN_TARGET,
    CHAIN_TARGET2,
    CHAIN_TARGET_PORT,
)
from tests.lab.chainlab import LEADLINE, chain_lab, routes_from_xml, run, trace_ports_from_xml  # noqa: F401 (fixture)
from tests.schema_check import load_schema, schema_errors

pytestmark = [pytest.mark.lab]  # the chain lab is built once for both (conftest.SHARED_LABS)


def _sent_ttls(packet_trace: str) -> list[int]:
    """TTLs of the trace probes our --packet-trace shows leaving (the scan's own probes go with TTL 64)."""
    return [int(m.group(1)) for m in re.finditer(r"^SENT .* ttl=(\d+) ", packet_trace, re.M) if int(m.group(1)) < 30]


def test_shared_hops_are_probed_once(chain_lab: Lab) -> None:
    done = run(chain_lab, [LEADLINE, "-sS", "-p", f"22,{CHAIN_TARGET_PORT}", "--traceroute", "-n", "--packet-trace",
                           CHAIN_TARGET, CHAIN_TARGET2])
    assert re.search(r"^-\s+Hops 1-3 are the same as for 198\.18\.43\.(10|20)$", done.stdout, re.M), done.stdout
    ttls = _sent_ttls(done.stdout)
    assert ttls.count(1) == 1  # hop 1 answered once, for one host only
    assert ttls.count(2) == 3  # the silent hop: one host's probe and its two retries
    assert ttls.count(4) == 2  # each target at its distance
    assert "2   ...\n" in done.stdout  # the silent router, as nmap shows it


def test_probe_choice_open_then_closed(chain_lab: Lab) -> None:
    xml = run(chain_lab, [LEADLINE, "-sS", "-p", f"22,{CHAIN_TARGET_PORT}", "--traceroute", "-n", "-oX", "-",
                          CHAIN_TARGET, CHAIN_TARGET2]).stdout
    ports = trace_ports_from_xml(xml)
    assert ports[CHAIN_TARGET] == ("tcp", str(CHAIN_TARGET_PORT))  # the open port
    assert ports[CHAIN_TARGET2] == ("tcp", "22")  # nothing open: a closed port's RST answers


@pytest.mark.parametrize("family", [4, 6])
def test_unreachable_ends_the_route(chain_lab: Lab, family: int) -> None:
    target, r3 = (CHAIN_REFUSED, CHAIN_R3) if family == 4 else (CHAIN_REFUSED6, CHAIN_R3_6)
    extra = ["-6"] if family == 6 else []
    xml = run(chain_lab, [LEADLINE, *extra, "-sn", "-Pn", "--traceroute", "-n", "-oX", "-", target]).stdout
    route = routes_from_xml(xml)[target]
    assert route[-2:] == [(3, r3), (4, r3)]  # time-exceeded at 3, then "unreachable" ends it at 4


def test_host_timeout_ends_a_trace(chain_lab: Lab) -> None:
    """Nobody answers for 198.18.43.99 (r3 waits seconds for ARP): the trace stops at the host timeout."""
    t0 = time.monotonic()
    done = run(chain_lab, [LEADLINE, "-sn", "-Pn", "--traceroute", "-n", "--host-timeout", "1s", "198.18.43.99"])
    assert time.monotonic() - t0 < 2.5
    assert "Skipping host 198.18.43.99 due to host timeout" in done.stdout


def test_json_output_carries_the_route(chain_lab: Lab) -> None:
    text = run(chain_lab, [LEADLINE, "-sS", "-p", str(CHAIN_TARGET_PORT), "--traceroute", "-n", "-oJ", "-",
                           CHAIN_TARGET]).stdout
    doc = json.loads(text)
    assert schema_errors(doc, load_schema()) == []
    host = doc["hosts"][0]
    assert host["distance"] == 4
    assert [(h["ttl"], h["address"]) for h in host["trace"]["hops"]] == [
        (1, CHAIN_R1), (2, None), (3, CHAIN_R3), (4, CHAIN_TARGET)]


@pytest.mark.serial  # wall-clock bound: another test beside it would stretch it
def test_silent_hop_costs_less_than_nmaps_three_seconds(chain_lab: Lab) -> None:
    t0 = time.monotonic()
    run(chain_lab, [LEADLINE, "-sn", "--traceroute", "-n", CHAIN_TARGET])
    assert time.monotonic() - t0 < 2.0
