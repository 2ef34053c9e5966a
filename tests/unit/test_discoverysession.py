"""The discovery session over the fake network, in virtual time: no root, no sockets."""

from __future__ import annotations

import math

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.discoverysession import DiscoveryResult, DiscoverySession, Heard, HostPlan, Outgoing
from leadline.core.probes.base import ProbeContext
from leadline.core.ratecontrol import RateController
from leadline.engines.fake import CLOSED, DROP, FakeHost, FakeNetwork
from leadline.model import Reason

CTX = ProbeContext("198.18.5.250", b"0123456789abcdef")
FOUR_TYPES = (("echo", 0), ("timestamp", 0), ("syn", 443), ("ack", 80))
ECHO = [f"198.18.5.{i}" for i in range(1, 41)]
ACK_ONLY = [f"198.18.5.{i}" for i in range(41, 51)]  # drops all but the ACK probe to port 80
SILENT = [f"198.18.5.{i}" for i in range(51, 61)]


def network() -> FakeNetwork:
    hosts = {a: FakeHost(default=DROP, icmp_queries=frozenset({8})) for a in ECHO}
    hosts |= {a: FakeHost(ports={80: CLOSED}, default=DROP) for a in ACK_ONLY}
    hosts |= {a: FakeHost(default=DROP) for a in SILENT}
    return FakeNetwork(hosts)


def sweep(plans: list[HostPlan], net: FakeNetwork, timing: Timing = TIMING_TEMPLATES[4], *, rate: RateController | None = None,
          limit: float = 60.0) -> tuple[list[DiscoveryResult], list[tuple[float, Outgoing]], dict[str, float]]:
    """Run the session to the end; return its results, every probe sent (with its time) and when each host was found up."""
    session = DiscoverySession(plans, timing, rate=rate or RateController.from_timing(timing), attempts=2)
    now, results, sent, up_at = 0.0, [], [], {}
    while not session.finished and now < limit:
        for out in session.due(now):
            sent.append((now, out))
            net.send(out.packet, now)
        for at, reply in net.receive(now):
            if session.receive(reply, at) is Heard.ANSWER:
                up_at.setdefault(reply_source(reply), at)
        session.expire(now)
        results.extend(session.results())
        arrival = net.next_arrival()
        step = min(session.time_until_next(now), (arrival - now) if arrival is not None else math.inf)
        now += max(step, 1e-5)
    assert session.finished, "the sweep must end by itself"
    return results, sent, up_at


def reply_source(datagram: bytes) -> str:
    return ".".join(str(b) for b in datagram[12:16])


def test_four_probe_types_send_nothing_to_a_host_once_it_is_up() -> None:
    targets = ECHO + ACK_ONLY + SILENT
    results, sent, up_at = sweep([HostPlan(a, FOUR_TYPES, CTX) for a in targets], network())
    assert [r.address for r in results] == targets, "one result per target, in target order"
    found = {r.address: r for r in results}
    assert all(found[a].up and found[a].reason is Reason.ECHO_REPLY for a in ECHO)
    assert all(found[a].up and found[a].reason is Reason.RESET for a in ACK_ONLY)
    assert not any(found[a].up for a in SILENT)
    late = [(at, out.address, out.kind) for at, out in sent if out.address in up_at and at >= up_at[out.address]]
    assert late == [], "a probe went to a host already found up"
    per_host = {a: sum(1 for _, out in sent if out.address == a) for a in targets}
    assert {per_host[a] for a in ECHO} == {1}  # its first type answered: the other three never left
    assert {per_host[a] for a in ACK_ONLY} == {4}
    assert {per_host[a] for a in SILENT} == {8}  # every type, in both rounds


def test_more_probe_types_cost_about_one_on_answering_hosts() -> None:
    one, _, _ = sweep([HostPlan(a, (("echo", 0),), CTX) for a in ECHO], network())
    _, sent_four, _ = sweep([HostPlan(a, FOUR_TYPES, CTX) for a in ECHO], network())
    assert all(r.up for r in one)
    assert len(sent_four) == len(ECHO)


def test_results_known_up_front_pass_through_in_order() -> None:
    mine = DiscoveryResult("198.18.5.250", True, Reason.LOCALHOST)
    nowhere = DiscoveryResult("198.18.9.9", False, Reason.NET_UNREACH)
    plans = [HostPlan(ECHO[0], FOUR_TYPES, CTX), HostPlan(mine.address, decided=mine), HostPlan(nowhere.address, decided=nowhere)]
    results, sent, _ = sweep(plans, network())
    assert results[1:] == [mine, nowhere]
    assert results[0].up and results[0].latency is not None and results[0].latency > 0
    assert {out.address for _, out in sent} == {ECHO[0]}


def test_max_rate_paces_every_send() -> None:
    rate = RateController(max_rate=200.0)
    timing = TIMING_TEMPLATES[4]
    _, sent, _ = sweep([HostPlan(a, FOUR_TYPES, CTX) for a in SILENT + ACK_ONLY], network(), timing, rate=rate)
    times = sorted(at for at, _ in sent)
    # 10 silent hosts x 8 + 10 ACK-only hosts x 4 = 120 probes at 200/s: at least about 0.6 s.
    assert len(times) == 120
    assert times[-1] - times[0] >= (len(times) - 2) / 200.0
    busiest = max(sum(1 for t in times if start <= t < start + 0.1) for start in times)
    assert busiest <= 0.1 * 200 * 1.1 + 1


def test_stray_and_foreign_packets_change_nothing() -> None:
    session = DiscoverySession([HostPlan(ECHO[0], FOUR_TYPES, CTX)], TIMING_TEMPLATES[4], rate=RateController())
    session.due(0.0)
    assert session.receive(b"\x45" + bytes(19), 0.001) is Heard.NOT_OURS
    assert session.receive(b"\x45\x00\x00\x14" + bytes(12) + bytes([198, 18, 5, 250]), 0.001) is Heard.OURS
    assert session.receive(b"", 0.001) is Heard.NOT_OURS
    assert not session.decided(ECHO[0])
