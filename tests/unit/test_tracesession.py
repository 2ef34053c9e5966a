"""The traceroute core: probes and their answers from byte literals, the session over a scripted routed network."""

from __future__ import annotations

import os
import random

import pytest

from leadline.core.packet.parse import parse_datagram
from leadline.core.traceprobe import ReplyKind, TraceMethod, TraceProbes, distance_from_ttl
from leadline.core.tracesession import HopCache, TraceOptions, TraceSession, TraceTarget

from tests.unit.tracenet import TraceNet, _error, _target_answer, run_session

US, US6 = "198.18.1.2", "fd18:4c11:0:1::2"
R1, R2, FAR = "198.18.1.1", "198.18.2.2", "198.18.3.10"
R1_6, R2_6, FAR6 = "fd18:4c11:0:1::1", "fd18:4c11:0:2::2", "fd18:4c11:0:3::10"
SECRET = b"trace-test-secret"
SYN80 = TraceMethod("tcp", 80)
METHODS = [SYN80, TraceMethod("udp", 33434), TraceMethod("icmp")]


def session(targets: list[TraceTarget], family: int = 4, cache: HopCache | None = None, **options: object) -> TraceSession:
    return TraceSession(targets, SECRET, family, TraceOptions(**options), cache)  # type: ignore[arg-type]


# -- probes --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.protocol)
@pytest.mark.parametrize("family", [4, 6])
def test_probe_carries_ttl_and_answers_map_back(method: TraceMethod, family: int) -> None:
    us, router, target = (US, R1, FAR) if family == 4 else (US6, R1_6, FAR6)
    probes = TraceProbes(us, SECRET, family)
    datagram = probes.build(target, method, 7, 2)
    assert parse_datagram(datagram).ttl == 7
    hop = probes.read(_error(router, us, datagram, "time", 63))
    assert hop is not None and (hop.target, hop.ttl, hop.attempt, hop.sender, hop.kind) == (target, 7, 2, router, ReplyKind.HOP)
    answer = probes.read(_target_answer(datagram, 62))
    assert answer is not None and (answer.target, answer.ttl, answer.attempt, answer.kind) == (target, 7, 2, ReplyKind.TARGET)
    assert answer.reply_ttl == 62
    refused = probes.read(_error(router, us, datagram, "unreach", 63))
    assert refused is not None and refused.kind is ReplyKind.UNREACHABLE


def test_another_secret_or_address_is_not_ours() -> None:
    datagram = TraceProbes(US, SECRET, 4).build(FAR, SYN80, 3, 0)
    assert TraceProbes(US, b"another", 4).read(_target_answer(datagram, 62)) is None
    assert TraceProbes("198.18.1.3", SECRET, 4).read(_error(R1, "198.18.1.3", datagram, "time", 64)) is None


def test_distance_from_ttl() -> None:
    assert [distance_from_ttl(t) for t in (64, 62, 128, 126, 255, 250, 32)] == [1, 3, 1, 3, 1, 6, 1]


def test_reading_never_raises_on_odd_bytes() -> None:
    """Fuzz: truncated and mangled answers, odd ICMP quoting; None or a reply, never an exception."""
    rng = random.Random(11)
    probes = TraceProbes(US, SECRET, 4)
    probes6 = TraceProbes(US6, SECRET, 6)
    seeds = []
    for method in METHODS:
        for p, us, router, target in ((probes, US, R1, FAR), (probes6, US6, R1_6, FAR6)):
            datagram = p.build(target, method, 4, 1)
            seeds += [(p, _error(router, us, datagram, "time", 63)), (p, _target_answer(datagram, 62))]
    for _ in range(3000):
        p, seed = rng.choice(seeds)
        data = bytearray(seed)
        action = rng.randrange(4)
        if action == 0:
            data = data[: rng.randrange(len(data) + 1)]
        elif action == 1:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 2:
            data += os.urandom(rng.randrange(1, 40))
        else:
            cut = rng.randrange(20, len(data))
            data = data[:cut] + os.urandom(rng.randrange(0, 30))
        reply = p.read(bytes(data))
        assert reply is None or 1 <= reply.ttl <= 30


# -- the session ---------------------------------------------------------------------------
def far_net() -> TraceNet:
    return TraceNet({FAR: [R1, R2], "198.18.3.20": [R1, R2], R2: [R1]})


def test_known_distance_three_probes_down_to_one() -> None:
    net = far_net()
    s = session([TraceTarget(FAR, US, SYN80, distance=3, latency=0.006)])
    run_session(s, net)
    result = s.result(FAR)
    assert [(h.ttl, h.address) for h in result.hops] == [(1, R1), (2, R2), (3, FAR)]
    assert result.distance == 3 and result.shared_with is None
    assert [ttl for _, ttl in net.sent] == [3, 2, 1]  # counted down from the distance, nothing wasted
    assert all(h.rtt is not None and h.rtt > 0 for h in result.hops)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.protocol)
def test_unknown_distance_starts_at_ten_and_jumps_to_the_distance(method: TraceMethod) -> None:
    net = far_net()
    s = session([TraceTarget(FAR, US, method)])
    run_session(s, net)
    result = s.result(FAR)
    assert [(h.ttl, h.address) for h in result.hops] == [(1, R1), (2, R2), (3, FAR)]
    ttls = [ttl for _, ttl in net.sent]
    assert ttls[0] == 10 and 3 in ttls and max(ttls) == 10 and len(ttls) < 8


def test_ipv6_route() -> None:
    net = TraceNet({FAR6: [R1_6, R2_6]})
    s = session([TraceTarget(FAR6, US6, SYN80, distance=3)], family=6)
    run_session(s, net)
    assert [(h.ttl, h.address) for h in s.result(FAR6).hops] == [(1, R1_6), (2, R2_6), (3, FAR6)]


def test_shared_hops_are_not_probed_again() -> None:
    net = far_net()
    other = "198.18.3.20"
    s = session([TraceTarget(FAR, US, SYN80, distance=3, latency=0.006),
                 TraceTarget(other, US, SYN80, distance=3, latency=0.006)])
    run_session(s, net)
    first, second = s.result(FAR), s.result(other)
    assert [h.address for h in first.hops] == [R1, R2, FAR]
    assert [h.address for h in second.hops] == [R1, R2, other]
    assert (second.shared_with, second.shared_hops) == (FAR, 2)
    assert sorted(ttl for dst, ttl in net.sent if dst == other) == [2, 3]  # TTL 1 never sent for it


def test_cache_outlives_a_session() -> None:
    """The next host group reuses what the first learned."""
    net = far_net()
    cache = HopCache()
    run_session(session([TraceTarget(FAR, US, SYN80, distance=3)], cache=cache), net)
    net.sent.clear()
    later = session([TraceTarget(R2, US, SYN80, distance=2)], cache=cache)
    run_session(later, net)
    result = later.result(R2)
    assert [h.address for h in result.hops] == [R1, R2]
    assert (result.shared_with, result.shared_hops) == (FAR, 1)
    assert sorted(ttl for _, ttl in net.sent) == [1, 2]


def test_silent_router_is_shown_as_silence_and_costs_its_timeouts() -> None:
    net = TraceNet({FAR: [R1, None, "198.18.9.1"]})
    s = session([TraceTarget(FAR, US, SYN80, distance=4, latency=0.008)], retries=1)
    end = run_session(s, net)
    result = s.result(FAR)
    assert [(h.ttl, h.address) for h in result.hops] == [(1, R1), (2, None), (3, "198.18.9.1"), (4, FAR)]
    assert result.distance == 4
    assert sorted(ttl for _, ttl in net.sent) == [1, 2, 2, 3, 4]  # one retry of the silent TTL
    assert end < 1.0  # the silent TTL cost a few timeouts of the measured RTT, not nmap's seconds


def test_unreachable_ends_the_route() -> None:
    net = TraceNet({FAR: [R1, R2]}, unreachable={R2})
    s = session([TraceTarget(FAR, US, SYN80, distance=3)])
    run_session(s, net)
    result = s.result(FAR)
    assert [(h.ttl, h.address) for h in result.hops] == [(1, R1), (2, R2)]
    assert result.distance is None
    assert max(ttl for _, ttl in net.sent) == 3


def test_unanswered_target_is_traced_to_ttl_30() -> None:
    net = TraceNet({FAR: [R1, R2]}, silent_targets={FAR})
    s = session([TraceTarget(FAR, US, SYN80, distance=3)], retries=0, min_timeout=0.05)
    run_session(s, net)
    result = s.result(FAR)
    assert [h.address for h in result.hops[:2]] == [R1, R2]
    assert len(result.hops) == 30 and all(h.address is None for h in result.hops[2:])
    assert result.distance is None


def test_host_timeout_ends_the_trace() -> None:
    net = TraceNet({FAR: [R1, R2]}, silent_targets={FAR})
    s = session([TraceTarget(FAR, US, SYN80, distance=3, deadline=0.3)], retries=2, min_timeout=0.1)
    end = run_session(s, net)
    assert s.result(FAR).timed_out
    assert end <= 0.31


def test_many_hosts_respect_the_window() -> None:
    targets = [f"198.18.3.{i}" for i in range(20, 120)]
    net = TraceNet({t: [R1, R2] for t in targets})
    s = session([TraceTarget(t, US, SYN80, distance=3) for t in targets], max_in_flight=8)
    peak = 0
    original = s.due

    def due(now: float) -> list[tuple[str, bytes]]:
        nonlocal peak
        out = original(now)
        peak = max(peak, s.in_flight)
        return out

    s.due = due  # type: ignore[method-assign]
    run_session(s, net)
    assert peak <= 8
    for t in targets:
        assert [h.address for h in s.result(t).hops] == [R1, R2, t]
    shared = [t for t in targets if s.result(t).shared_with is not None]
    assert len(shared) >= 90  # nearly every host borrowed hops 1-2 from another
    assert len(net.sent) < 3 * len(targets)


def test_session_survives_odd_answers_and_keeps_the_route() -> None:
    """Fuzz: mangled copies of real answers fed between the real ones change nothing and raise nothing."""
    rng = random.Random(7)
    net = far_net()
    s = session([TraceTarget(FAR, US, SYN80, distance=3)])
    real = net.answer
    noise: list[bytes] = []

    def answer(datagram: bytes) -> list[tuple[float, bytes]]:
        replies = real(datagram)
        for _, reply in replies:
            for _ in range(20):
                data = bytearray(reply)
                for _ in range(rng.randrange(1, 4)):
                    data[rng.randrange(20, len(data))] = rng.randrange(256)
                noise.append(bytes(data[: rng.randrange(20, len(data) + 1)]))
        return [(0.0005, n) for n in noise[-20:]] + replies

    net.answer = answer  # type: ignore[method-assign]
    run_session(s, net)
    assert noise
    assert [h.address for h in s.result(FAR).hops] == [R1, R2, FAR]
