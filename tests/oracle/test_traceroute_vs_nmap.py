"""leadline --traceroute against nmap --traceroute: the same hops and distance, IPv4 and IPv6.

To the practice lab's far host (two routers away) and through the router
chain (a silent router in the middle: both tools show its TTL as silence),
and ``leadline trace`` lists the same route.  Port states are compared
too, so the trace rides on an equal scan.
"""

from __future__ import annotations

import re

import pytest

from leadline.lab import Lab, practice
from leadline.lab.chain import (
    CHAIN_R1,
    CHAIN_R1_6,
    CHAIN_R3,
    CHAIN_R3_6,
    CHAIN_TARGET,
    CHAIN_TARGET2,
    CHAIN_TARGET6,
)
from tests.conftest import scan_in_lab
from tests.lab.chainlab import LEADLINE, Route, chain_lab, routes_from_xml, run  # noqa: F401 (fixture)
from tests.oracle.nmapxml import diff_states, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle]  # the chain lab is built once for both (conftest.SHARED_LABS)

FLAGS = ["-sS", "-p", "22,80", "--traceroute", "-n", "-oX", "-"]


def _both(lab: Lab, flags: list[str], targets: list[str]) -> tuple[str, str]:
    ours = scan_in_lab(lab, [LEADLINE, *flags, *targets])
    theirs = scan_in_lab(lab, ["nmap", *flags, *targets])
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    return ours.stdout, theirs.stdout


def _same_scan(ours: str, theirs: str) -> None:
    our_states, their_states = read_states(ours), read_states(theirs)
    assert set(our_states) == set(their_states)
    for address in their_states:
        assert diff_states(our_states[address], their_states[address], with_reason=False) == []


@pytest.mark.parametrize("family", [4, 6])
def test_far_host_route_and_distance_equal_nmaps(practice_lab: Lab, family: int) -> None:
    target = practice.FAR if family == 4 else practice.FAR6
    flags = FLAGS if family == 4 else ["-6", *FLAGS]
    ours, theirs = _both(practice_lab, flags, [target])
    _same_scan(ours, theirs)
    our_route, their_route = routes_from_xml(ours)[target], routes_from_xml(theirs)[target]
    assert our_route == their_route
    routers = (practice.ROUTER1, practice.ROUTER2) if family == 4 else (practice.ROUTER1_6, practice.ROUTER2_6)
    assert our_route == [(1, routers[0]), (2, routers[1]), (3, target)]  # distance 3: the last TTL


def _trace_lines(lab: Lab, argv: list[str]) -> Route:
    done = scan_in_lab(lab, [LEADLINE, "trace", "-n", *argv])
    assert done.returncode == 0, done.stderr
    route = []
    for line in done.stdout.splitlines()[1:]:
        m = re.fullmatch(r"\s*(\d+)\s+(\S+)(\s+[\d.]+ ms)?", line)
        assert m is not None, line
        if m.group(2) != "*":
            route.append((int(m.group(1)), m.group(2)))
    return route


@pytest.mark.parametrize("family", [4, 6])
def test_leadline_trace_agrees_with_nmap(practice_lab: Lab, family: int) -> None:
    target = practice.FAR if family == 4 else practice.FAR6
    flags = FLAGS if family == 4 else ["-6", *FLAGS]
    theirs = scan_in_lab(practice_lab, ["nmap", *flags, target])
    assert theirs.returncode == 0
    expected = routes_from_xml(theirs.stdout)[target]
    extra = [] if family == 4 else ["-6"]
    assert _trace_lines(practice_lab, [*extra, target]) == expected  # ICMP echo
    assert _trace_lines(practice_lab, [*extra, "-p", "22", target]) == expected  # SYN to an open port


def test_lab_subnets_routes_equal_nmaps(practice_lab: Lab) -> None:
    """Every answering host of the three subnets: the same route as nmap's, whichever host's hops were shared."""
    flags = ["-sS", "-p", "22,80", "--traceroute", "-n", "-oX", "-"]
    ours, theirs = _both(practice_lab, flags, [practice.LAN, practice.TRANSIT, practice.FAR_LAN])
    our_routes, their_routes = routes_from_xml(ours), routes_from_xml(theirs)
    assert set(our_routes) == set(their_routes) and len(our_routes) >= 8
    for address, route in their_routes.items():
        assert our_routes[address] == route, address


def test_chain_with_a_silent_router_equals_nmap(chain_lab: Lab) -> None:
    for family, targets, r1, r3 in ((4, [CHAIN_TARGET, CHAIN_TARGET2], CHAIN_R1, CHAIN_R3),
                                    (6, [CHAIN_TARGET6], CHAIN_R1_6, CHAIN_R3_6)):
        flags = FLAGS if family == 4 else ["-6", *FLAGS]
        ours = run(chain_lab, [LEADLINE, *flags, *targets]).stdout
        theirs = run(chain_lab, ["nmap", *flags, *targets]).stdout
        _same_scan(ours, theirs)
        our_routes, their_routes = routes_from_xml(ours), routes_from_xml(theirs)
        for target in targets:
            assert our_routes[target] == their_routes[target] == [(1, r1), (3, r3), (4, target)]
