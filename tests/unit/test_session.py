"""The scan session over the fake network: verdicts, retries, loss, caps, host completion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.probes.base import ProbeContext
from leadline.core.ratecontrol import RateController
from leadline.core.session import Event, HostDone, PortDecided, ScanSession, Warning
from leadline.engines.fake import CLOSED, DROP, OPEN, Answer, FakeHost, FakeNetwork, PortBehaviour, run_fake_scan
from leadline.model import PortState, Reason
from tests.unit.rawprobe_fixture import FixtureSynScan

TARGET = "198.18.1.10"
CTX = ProbeContext("198.18.1.2", b"0123456789abcdef")
T3 = TIMING_TEMPLATES[3]
MIXED = {22: OPEN, 80: OPEN, 443: DROP, 110: PortBehaviour(Answer.ICMP, 1), 143: PortBehaviour(Answer.ICMP, 13)}


def scan(
    hosts: dict[str, FakeHost],
    ports: list[int],
    timing: Timing = T3,
    seed: int = 1,
    **network: object,
) -> tuple[float, list[Event], ScanSession, FakeNetwork]:
    net = FakeNetwork(hosts, seed=seed, **network)  # type: ignore[arg-type]
    session = ScanSession.for_group(FixtureSynScan(), CTX, list(hosts), ports, timing, RateController.from_timing(timing))
    events: list[Event] = []
    end = run_fake_scan(session, net, on_event=events.append)
    return end, events, session, net


def states(events: list[Event]) -> dict[tuple[str, int], PortState]:
    return {(e.address, e.port): e.verdict.state for e in events if isinstance(e, PortDecided)}


@pytest.fixture(scope="module")
def clean_2000() -> tuple[float, dict[tuple[str, int], PortState]]:
    end, events, _, _ = scan({TARGET: FakeHost(ports=MIXED)}, list(range(1, 2001)))
    return end, states(events)


def test_each_behaviour_gets_nmaps_verdict() -> None:
    _, events, _, _ = scan({TARGET: FakeHost(ports=MIXED)}, [21, 22, 80, 110, 143, 443])
    decided = {e.port: e for e in events if isinstance(e, PortDecided)}
    assert {p: (d.verdict.state, d.verdict.reason) for p, d in decided.items()} == {
        21: (PortState.CLOSED, Reason.RESET),
        22: (PortState.OPEN, Reason.SYN_ACK),
        80: (PortState.OPEN, Reason.SYN_ACK),
        110: (PortState.FILTERED, Reason.HOST_UNREACH),
        143: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
        443: (PortState.FILTERED, Reason.NO_RESPONSE),
    }
    assert decided[22].exchange[0] == "SYN"
    assert decided[22].exchange[1].startswith("SYN/ACK (ttl 64, ")
    assert decided[22].attempts == 1 and decided[22].rtt == pytest.approx(0.0003)
    assert 2 <= decided[443].attempts <= T3.max_retries + 1 and decided[443].rtt is None
    assert decided[443].exchange[2] == "SYN (retry 1)"
    assert events[-1] == HostDone(TARGET)
    assert events[-1].latency == pytest.approx(0.0003)  # the shortest first-attempt RTT


def test_random_loss_decides_the_same_states_in_close_to_the_same_time(clean_2000) -> None:
    clean_time, clean_states = clean_2000
    lossy_time, events, session, _ = scan({TARGET: FakeHost(ports=MIXED, loss=0.3)}, list(range(1, 2001)))
    assert states(events) == clean_states
    assert lossy_time < clean_time + 3.0  # nmap: tens of minutes
    assert session.rate.ceiling is None


def test_rate_limited_resets_decide_the_same_states_and_the_pace_settles_near_the_cap(clean_2000) -> None:
    _, clean_states = clean_2000
    end, events, session, net = scan({TARGET: FakeHost(ports=MIXED, rst_limit=(50, 50))}, list(range(1, 2001)))
    assert states(events) == clean_states
    assert 30 <= session.rate.rate <= 90
    assert session.sent < 2000 * 2  # no flood of ignored probes
    late = [t for t in net.send_times if t >= end / 2]
    assert 30 <= len(late) / (end - end / 2) <= 90


def test_a_congested_link_is_backed_off_and_states_survive(clean_2000) -> None:
    _, clean_states = clean_2000
    _, events, session, _ = scan({TARGET: FakeHost(ports=MIXED)}, list(range(1, 2001)), link_rate=4000, link_queue=40)
    assert states(events) == clean_states
    assert session.rate.ceiling is not None and session.rate.ceiling < 12_000


def test_max_retries_is_honoured() -> None:
    for retries in (0, 1, 3):
        timing = replace(T3, max_retries=retries)
        _, events, _, net = scan({TARGET: FakeHost(default=DROP, ports={80: OPEN}, loss=0.5)}, list(range(1, 50)), timing)
        attempts = [e.attempts for e in events if isinstance(e, PortDecided) and e.port != 80]
        assert max(attempts) <= retries + 1
        assert len(net.send_times) <= 49 * (retries + 1)


def test_duplicate_and_stray_replies_are_ignored() -> None:
    net = FakeNetwork({TARGET: FakeHost(ports={22: OPEN})})
    session = ScanSession(FixtureSynScan(), CTX, [(TARGET, 22), (TARGET, 23)], T3, RateController())
    for now in (0.0, 0.01):
        for probe in session.due(now):
            net.send(probe.packet, now)
    replies = [d for _, d in net.receive(1.0)]
    first = session.receive(replies[0], 0.001)
    assert [type(e) for e in first] == [PortDecided]
    assert session.receive(replies[0], 0.002) == []
    assert session.receive(b"\x45" + bytes(39), 0.002) == []
    events = session.receive(replies[1], 0.013)
    assert [type(e) for e in events] == [PortDecided, HostDone]
    assert session.due(0.014) == [] and session.expire(0.014) == []
    assert session.finished


def test_a_host_answering_every_port_draws_a_warning() -> None:
    _, events, _, _ = scan({TARGET: FakeHost(default=OPEN)}, list(range(1, 301)))
    warnings = [e for e in events if isinstance(e, Warning)]
    assert len(warnings) == 1 and warnings[0].address == TARGET
    assert "SYN proxy" in warnings[0].text
    assert events.index(warnings[0]) == len(events) - 2


def test_each_host_is_done_once_after_its_last_port() -> None:
    hosts = {f"198.18.1.{i}": FakeHost(ports={22: OPEN}, default=CLOSED if i % 2 else DROP) for i in range(10, 15)}
    _, events, _, _ = scan(hosts, [21, 22, 23, 80])
    for address in hosts:
        done = [i for i, e in enumerate(events) if e == HostDone(address)]
        ports = [i for i, e in enumerate(events) if isinstance(e, PortDecided) and e.address == address]
        assert len(done) == 1 and len(ports) == 4 and max(ports) < done[0]


def test_the_target_stream_is_read_lazily_and_in_flight_stays_bounded() -> None:
    drawn = 0

    def stream() -> Iterator[tuple[str, int]]:
        nonlocal drawn
        for port in range(1, 65536):
            for last in range(1, 255):
                drawn += 1
                yield f"198.18.{port % 200}.{last}", port

    timing = replace(T3, max_parallelism=64)
    session = ScanSession(FixtureSynScan(), CTX, stream(), timing, RateController(max_rate=100_000))
    now = 0.0
    for _ in range(200):
        session.due(now)
        assert session.in_flight <= 64
        session.expire(now)
        now += 0.05
    assert drawn <= session.started + 1
    assert session.started < 10_000


def test_the_real_syn_module_runs_in_the_session() -> None:
    from leadline.config import ScanType
    from leadline.scantypes import probe_module

    net = FakeNetwork({TARGET: FakeHost(ports=MIXED, loss=0.2)}, seed=3)
    session = ScanSession.for_group(probe_module(ScanType.SYN, None), CTX, [TARGET], list(range(1, 300)) + [443], T3, RateController())
    events: list[Event] = []
    run_fake_scan(session, net, on_event=events.append)
    found = {port: state for (_, port), state in states(events).items()}
    assert found[22] is PortState.OPEN and found[80] is PortState.OPEN
    assert found[110] is PortState.FILTERED and found[143] is PortState.FILTERED and found[443] is PortState.FILTERED
    assert sum(1 for state in found.values() if state is PortState.CLOSED) == 300 - 5


def test_random_loss_never_cuts_a_port_short_across_seeds(clean_2000) -> None:
    # The loss estimate must not be biased low while retries are still on the
    # wire: early timeouts once decided lossy ports after two attempts.
    _, clean_states = clean_2000
    wrong: dict[int, int] = {}
    for seed in range(2, 22):
        _, events, _, _ = scan({TARGET: FakeHost(ports=MIXED, loss=0.3)}, list(range(1, 2001)), seed=seed)
        found = states(events)
        differ = sum(1 for key, state in clean_states.items() if found.get(key) != state)
        if differ:
            wrong[seed] = differ
    assert wrong == {}


def test_a_clean_mostly_filtered_host_costs_two_attempts_per_silent_port() -> None:
    ports = list(range(1, 1001))
    _, events, session, _ = scan({TARGET: FakeHost(default=DROP, ports={22: OPEN, 80: OPEN, 135: OPEN, 445: OPEN, 139: OPEN})}, ports)
    attempts = [e.attempts for e in events if isinstance(e, PortDecided) and e.verdict.state is PortState.FILTERED]
    assert len(attempts) == 995
    assert sum(attempts) <= 995 * 2 + 100  # a third attempt only while evidence is thin


def test_a_clean_host_with_few_silent_ports_costs_two_attempts_each() -> None:
    # Nearly every first attempt answered bounds the loss without waiting for retries.
    _, events, _, _ = scan({TARGET: FakeHost(ports=MIXED)}, list(range(1, 2001)))
    silent = [e.attempts for e in events if isinstance(e, PortDecided) and e.verdict.reason is Reason.NO_RESPONSE]
    assert silent == [2]


def test_receive_many_takes_a_batch_and_ignores_what_is_not_ours() -> None:
    session = ScanSession.for_group(FixtureSynScan(), CTX, [TARGET], [21, 22], T3, RateController.from_timing(T3))
    probes = session.due(0.0) + session.due(0.01)  # the pacer lets one out at the start
    assert len(probes) == 2
    net = FakeNetwork({TARGET: FakeHost(ports={22: OPEN})}, seed=1)
    for probe in probes:
        net.send(probe.packet, 0.0)
    replies = [datagram for _, datagram in net.receive(1.0)]
    events = session.receive_many([b"\x45junk", *replies, *replies], 0.011)
    decided = {e.port: e.verdict.state for e in events if isinstance(e, PortDecided)}
    assert decided == {21: PortState.CLOSED, 22: PortState.OPEN}
    assert isinstance(events[-1], HostDone) and session.finished


def test_a_host_share_is_the_address_modulo_the_worker_count() -> None:
    from leadline.core.targets import in_share

    addresses = [f"198.19.0.{i}" for i in range(10)]
    evens = [a for a in addresses if in_share(a, (0, 2))]
    odds = [a for a in addresses if in_share(a, (1, 2))]
    assert evens == addresses[0::2] and odds == addresses[1::2]
    # 198.19.0.0 is 3,323,133,952, which is 1 modulo 3.
    assert [a for a in addresses if in_share(a, (1, 3))] == ["198.19.0.0", "198.19.0.3", "198.19.0.6", "198.19.0.9"]
    assert sum(in_share(a, (i, 3)) for a in addresses for i in range(3)) == len(addresses)
