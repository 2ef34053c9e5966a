"""The UDP session over the fake network in virtual time: exact states under ICMP rate limits, pace, lanes."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from leadline.config import TIMING_TEMPLATES
from leadline.core.icmplimit import IcmpLimit
from leadline.core.inflight import Event, HostDone, PortDecided
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.udp import UdpScan
from leadline.core.ratecontrol import RateController
from leadline.core.udppayloads import PAYLOADS, Payload, PayloadTable
from leadline.core.udpsession import UdpSession
from leadline.engines.fake import CLOSED, DROP, OPEN, Answer, FakeHost, FakeNetwork, PortBehaviour, run_fake_scan
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


# -- spending the target's errors only where they are needed ------------------------------------------

US = "198.18.1.100"


def _error_for(module: UdpScan, port: int, attempt: int, source: str = US) -> bytes:
    """The port unreachable the target sends for the probe to ``port`` carrying ``attempt``."""
    quoted = module.build(TARGET, port, attempt, ProbeContext(source, b"s" * 16)).packet[:28]
    return build_ipv4(IPv4Header(TARGET, source, 1, build_icmp(ICMPMessage(3, 3, 0, quoted))))


def _three_payloads(ports: list[int]) -> PayloadTable:
    """A table giving ``ports`` three payloads each, as nmap's file does for NetBIOS, IKE or TFTP."""
    return PayloadTable([Payload(f"p{i}", tuple(ports), lambda token, i=i: bytes([i]) * 4) for i in range(3)])


def test_a_ports_other_payloads_go_after_the_first_datagrams_and_the_canary() -> None:
    module = UdpScan(payloads=_three_payloads([2, 4]))
    session = UdpSession(module, [ProbeContext(US, b"s" * 16)], [TARGET], [1, 2, 3, 4], TIMING_TEMPLATES[3],
                         RateController(initial_rate=1000, adaptive=False), explain=False)
    first = session.due(0.0)
    assert [p.key.port for p in first] == [1, 2, 3, 4, 2, 4]  # the second and third payloads ride together
    assert [len(p.extra) for p in first] == [0, 0, 0, 0, 1, 1]
    session.receive(_error_for(module, 1, 0), 0.001)  # port 1 is closed: the canary from now on
    session.expire(1.5)
    second = session.due(1.5)
    assert [p.key.port for p in second] == [2, 3, 4, 1, 2, 4]


def test_a_pool_spends_no_error_on_a_ports_second_payload() -> None:
    # 98 closed ports, 20 of them with three payloads: 48 answers in the bursts of eight addresses, then
    # 50 refills, eight a second: the seventh refill decides the last two.  Second payloads sent beside
    # their first ones drew errors out of the bursts and pushed the end to the eighth refill or later.
    module = UdpScan(payloads=_three_payloads(PORTS[::5]))
    network = FakeNetwork({TARGET: FakeHost(ports={7: DROP, 50: DROP}, icmp_limit=LINUX)}, seed=1)
    contexts = [ProbeContext(f"198.18.1.{100 + i}", b"s" * 16) for i in range(8)]
    session = UdpSession(module, contexts, [TARGET], PORTS, TIMING_TEMPLATES[3],
                         RateController(initial_rate=1000, adaptive=False), explain=False)
    events: list[Event] = []
    end = run_fake_scan(session, network, on_event=events.append, time_limit=600)
    states = {e.port: e.verdict.state for e in events if isinstance(e, PortDecided)}
    assert states == {p: PortState.OPEN_FILTERED if p in (7, 50) else PortState.CLOSED for p in PORTS}
    assert 7.0 <= end < 7.3


def test_open_filtered_ports_cost_no_error_of_their_own() -> None:
    # Silences are proven by the errors later ports of the same round draw, so two open|filtered ports
    # need no canary answer: one source ends when the last closed port is answered, 91 refills after
    # its burst of six, where paying a canary error for each counted silence took up to 4 s longer.
    end, states, _, _, _ = scan(FakeHost(ports={7: DROP, 50: DROP}, icmp_limit=LINUX))
    assert {p: s for (_, p), s in states.items()} == {
        p: PortState.OPEN_FILTERED if p in (7, 50) else PortState.CLOSED for p in PORTS}
    assert 92.0 <= end < 92.5


def _one_retry_session(ports: list[int]) -> tuple[UdpScan, UdpSession]:
    module = UdpScan()
    timing = dataclasses.replace(TIMING_TEMPLATES[3], max_retries=0)  # one counted silence decides
    return module, UdpSession(module, [ProbeContext(US, b"s" * 16)], [TARGET], ports, timing,
                              RateController(initial_rate=1000, adaptive=False), explain=False)


@pytest.mark.parametrize("attempt, proves", [(1, True), (0, False)])
def test_only_an_error_to_the_rounds_own_send_proves_the_silences_before_it(attempt: int, proves: bool) -> None:
    module, session = _one_retry_session([5, 7, 8])
    assert [p.key.port for p in session.due(0.0)] == [5, 7, 8]
    session.receive(_error_for(module, 5, 0), 0.001)  # 5 closed; 7 and 8 silent: the budget ran out
    assert [e.port for e in session.expire(0.5) if isinstance(e, PortDecided)] == []
    assert [p.key.port for p in session.due(0.5)] == [7, 8, 5]  # the second round, canary last
    # An error for 8: to this round's send, it proves 7 had one to spare; to the first round's
    # (arriving late), it says nothing about when 7's second probe arrived.
    session.receive(_error_for(module, 8, attempt), 0.501)
    decided = {e.port: e.verdict.state for e in session.expire(1.0) if isinstance(e, PortDecided)}
    assert decided == ({7: PortState.OPEN_FILTERED} if proves else {})


def _payload_scan(host: FakeHost, ports: list[int]) -> tuple[float, dict[int, PortState], dict[int, float]]:
    network = FakeNetwork({TARGET: host}, seed=0)
    session = UdpSession(UdpScan(payloads=PayloadTable(PAYLOADS)), [ProbeContext("198.18.1.100", b"s" * 16)], [TARGET],
                         ports, TIMING_TEMPLATES[3], RateController(initial_rate=1000, adaptive=False), explain=False)
    events: list[Event] = []
    end = run_fake_scan(session, network, on_event=events.append, time_limit=60)
    decided = [e for e in events if isinstance(e, PortDecided)]
    return end, {e.port: e.verdict.state for e in decided}, {e.port: e.rtt or 0.0 for e in decided}


def test_an_ssdp_device_answering_late_is_waited_for() -> None:
    # UPnP lets a device delay its answer to an M-SEARCH by up to MX seconds (our request says 1);
    # the ports around it decide at once, and the late answer still makes 1900 open.
    late = FakeHost(ports={1900: PortBehaviour(Answer.OPEN, delay=0.7), 1901: OPEN})
    end, states, rtts = _payload_scan(late, [1900, 1901, 22, 23])
    assert states == {1900: PortState.OPEN, 1901: PortState.OPEN, 22: PortState.CLOSED, 23: PortState.CLOSED}
    assert rtts[1900] > 0.69 and 0.7 < end < 1.0


def test_a_silent_ssdp_port_is_given_its_answer_delay_before_its_silence_counts() -> None:
    end, states, _ = _payload_scan(FakeHost(ports={1900: DROP, 1901: DROP}), [1900, 1901, 22])
    assert states == {1900: PortState.OPEN_FILTERED, 1901: PortState.OPEN_FILTERED, 22: PortState.CLOSED}
    assert end >= 2.0  # two silences that count, each a second after its send


@pytest.mark.parametrize("delay", [0.02, 0.15, 0.2])
def test_a_service_answering_after_the_canarys_error_is_still_found_open(delay: float) -> None:
    """The canary's error comes from the target's kernel at once; a busy daemon (or a resolver doing
    its lookup) answers from user space later.  Its port is open, as nmap finds it within its timeout:
    the canary may end a round early, but a port's silence counts only after the probe timeout."""
    ports = {**SILENT, 60: PortBehaviour(Answer.OPEN, delay=delay)}
    _, states, _, _, _ = scan(FakeHost(ports=ports))
    assert {p: s for (_, p), s in states.items()} == truth()


def test_a_tftp_server_answering_late_from_its_forked_process_is_waited_for() -> None:
    late = FakeHost(ports={69: PortBehaviour(Answer.OPEN, delay=0.4), 70: DROP})
    end, states, _ = _payload_scan(late, [69, 70, 22])
    assert states == {69: PortState.OPEN, 70: PortState.OPEN_FILTERED, 22: PortState.CLOSED}
