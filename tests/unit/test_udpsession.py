"""The UDP session over the fake network in virtual time: exact states under ICMP rate limits, pace, lanes."""

from __future__ import annotations

from collections import Counter

import pytest

from leadline.config import TIMING_TEMPLATES
from leadline.core.icmplimit import IcmpLimit
from leadline.core.inflight import Event, HostDone, PortDecided
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.udp import UdpScan
from leadline.core.ratecontrol import RateController
from leadline.core.udpsession import UdpSession
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost, FakeNetwork, run_fake_scan
from leadline.model import PortState

TARGET = "198.18.1.20"
PORTS = list(range(1, 101))
SILENT = {7: DROP, 50: DROP, 60: OPEN}
LINUX = (1.0, 6)  # one error per second after a burst of six, per source address


def scan(host: FakeHost, sources: int = 1, hosts: dict[str, FakeHost] | None = None, ports: list[int] = PORTS,
         seed: int = 0) -> tuple[float, dict[tuple[str, int], PortState], list[Event], UdpSession, FakeNetwork]:
    targets = hosts or {TARGET: host}
    network = FakeNetwork(targets, seed=seed)
    contexts = [ProbeContext(f"198.18.1.{100 + i}", b"s" * 16) for i in range(sources)]
    session = UdpSession(UdpScan(), contexts, list(targets), ports, TIMING_TEMPLATES[3],
                         RateController(initial_rate=1000, adaptive=False), explain=False)
    events: list[Event] = []
    end = run_fake_scan(session, network, on_event=events.append, time_limit=600)
    states = {(e.address, e.port): e.verdict.state for e in events if isinstance(e, PortDecided)}
    return end, states, events, session, network


def truth(ports: list[int] = PORTS) -> dict[int, PortState]:
    named = {7: PortState.OPEN_FILTERED, 50: PortState.OPEN_FILTERED, 60: PortState.OPEN}
    return {p: named.get(p, PortState.CLOSED) for p in ports}


def test_without_a_limit_the_scan_takes_a_fraction_of_a_second() -> None:
    end, states, events, _, network = scan(FakeHost(ports=SILENT))
    assert {p: s for (_, p), s in states.items()} == truth()
    assert end < 0.6
    assert len(network.send_times) < 130  # each silent port: a first probe and two counted silences
    assert sum(isinstance(e, HostDone) for e in events) == 1 and isinstance(events[-1], HostDone)


def test_with_linux_default_limit_every_closed_port_is_closed_near_the_floor() -> None:
    end, states, _, session, _ = scan(FakeHost(ports=SILENT, icmp_limit=LINUX))
    assert {p: s for (_, p), s in states.items()} == truth()
    floor = (97 - 6) * 1.0  # a burst of six, then one answer a second
    assert floor <= end <= 1.3 * floor
    limit = session.limits[TARGET][0]
    assert limit.burst == 6 and limit.interval == pytest.approx(1.0, abs=0.05)


def test_a_source_pool_spreads_the_budget_over_its_addresses() -> None:
    end, states, _, _, _ = scan(FakeHost(ports=SILENT, icmp_limit=LINUX), sources=8)
    assert {p: s for (_, p), s in states.items()} == truth()
    floor = (97 - 6 * 8) / 8
    assert end <= 1.3 * floor


def test_random_loss_with_a_limit_still_decides_closed_ports_closed() -> None:
    end, states, _, _, _ = scan(FakeHost(ports=SILENT, icmp_limit=(10.0, 6), loss=0.1), seed=3)
    # Lost probes and lost errors cost resends, never a closed port reported open|filtered.
    assert {p: s for (_, p), s in states.items() if p != 60} == {p: s for p, s in truth().items() if p != 60}


def test_pacing_never_stalls_when_a_port_is_silent_on_every_host() -> None:
    hosts = {f"198.18.2.{i}": FakeHost(ports={5: DROP}, icmp_limit=LINUX) for i in range(1, 41)}
    end, states, events, _, _ = scan(FakeHost(), hosts=hosts, ports=list(range(1, 21)))
    assert len(states) == 40 * 20
    assert all(s is PortState.OPEN_FILTERED for (a, p), s in states.items() if p == 5)
    assert all(s is PortState.CLOSED for (a, p), s in states.items() if p != 5)
    assert sum(isinstance(e, HostDone) for e in events) == 40
    assert end < 30  # 14 closed ports beyond each host's burst, every host's budget refilling at once


def test_a_host_that_never_sends_errors_is_decided_from_plain_silence() -> None:
    end, states, _, _, network = scan(FakeHost(default=DROP))
    assert set(states.values()) == {PortState.OPEN_FILTERED}
    assert end < 2.5 and len(network.send_times) == 200


def test_a_budget_that_never_refills_still_ends() -> None:
    end, states, _, _, _ = scan(FakeHost(ports=SILENT, icmp_limit=(0.0, 6)))
    assert len(states) == 100 and end < 60
    assert Counter(states.values())[PortState.CLOSED] == 6


def test_the_limit_estimate_reads_a_recorded_timeline() -> None:
    limit = IcmpLimit()
    for t in (0.0, 0.001, 0.002, 0.003, 0.004, 0.005):  # the burst
        limit.error(t)
    limit.limited = True
    for t in (1.004, 2.004, 3.011, 4.004, 5.3, 6.004):  # refills, one met late (the next gap is short)
        limit.error(t)
    assert limit.burst == 6
    assert limit.interval == pytest.approx(1.0, abs=0.01)
    assert limit.round_period(0.1) == pytest.approx(0.125, abs=0.002)
    assert "then one per 10" in limit.describe()
    fresh = IcmpLimit()
    assert fresh.interval is None and fresh.round_period(0.2) == 0.05
