"""A scripted routed network for traceroute tests: routers that answer time-exceeded (or not), targets that answer.

``TraceNet.answer(datagram)`` gives what the network sends back for one
probe, with the delay it takes, built with leadline's own packet
builders; ``run_session`` drives a ``TraceSession`` over it in virtual
time and records every probe sent.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp
from leadline.core.packet.udp import UDPDatagram
from leadline.core.tracesession import TraceSession

SILENT = None
HOP_DELAY = 0.001  # seconds per hop, each way


@dataclass
class TraceNet:
    """``paths``: target → the routers before it, in TTL order (None: a router that never answers).

    ``unreachable``: routers that answer host-unreachable instead of forwarding.
    ``target_ttl``: the initial TTL the targets answer with.
    """

    paths: dict[str, list[str | None]]
    unreachable: set[str] = field(default_factory=set)
    target_ttl: int = 64
    silent_targets: set[str] = field(default_factory=set)
    sent: list[tuple[str, int]] = field(default_factory=list)  # (destination, ttl) of every probe

    def answer(self, datagram: bytes) -> list[tuple[float, bytes]]:
        packet = parse_datagram(datagram)
        ttl = packet.ttl
        self.sent.append((packet.dst, ttl))
        routers = self.paths.get(packet.dst)
        if routers is None:
            return []
        for index, router in enumerate(routers):
            hop = index + 1
            if router in self.unreachable:
                return [] if router is None else [(2 * hop * HOP_DELAY, _error(router, packet.src, datagram, "unreach", 64 - index))]
            if ttl == hop:
                if router is None:
                    return []
                return [(2 * hop * HOP_DELAY, _error(router, packet.src, datagram, "time", 64 - index))]
        if packet.dst in self.silent_targets:
            return []
        distance = len(routers) + 1
        reply_ttl = self.target_ttl - len(routers)
        return [(2 * distance * HOP_DELAY, _target_answer(datagram, reply_ttl))]


def _ip(src: str, dst: str, protocol: int, payload: bytes, ttl: int) -> bytes:
    if ":" in src:
        return build_ipv6(IPv6Header(src, dst, protocol, payload, hop_limit=ttl))
    return build_ipv4(IPv4Header(src, dst, protocol, payload, ttl=ttl))


def _error(router: str, to: str, probe: bytes, kind: str, ttl: int) -> bytes:
    if ":" in router:
        kind6 = 3 if kind == "time" else 1
        code = {"time": 0, "unreach": 3, "port": 4}[kind]
        message = build_icmpv6(ICMPv6Message(kind6, code, 0, probe), pack_address(router), pack_address(to))
        return _ip(router, to, 58, message, ttl)
    kind4 = 11 if kind == "time" else 3
    code = {"time": 0, "unreach": 1, "port": 3}[kind]
    quoted = probe[: (probe[0] & 0xF) * 4 + 8]
    return _ip(router, to, 1, build_icmp(ICMPMessage(kind4, code, 0, quoted)), ttl)


def _target_answer(probe: bytes, ttl: int) -> bytes:
    packet = parse_datagram(probe)
    t = packet.transport
    me, them = packet.dst, packet.src
    if isinstance(t, TCPSegment):
        reply = TCPSegment(t.dport, t.sport, 12345, (t.seq + 1) & 0xFFFFFFFF, int(TCPFlag.SYN | TCPFlag.ACK), 29200)
        return _ip(me, them, 6, build_tcp(reply, pack_address(me), pack_address(them)), ttl)
    if isinstance(t, UDPDatagram):
        return _error(me, them, probe, "port", ttl)
    if isinstance(t, ICMPMessage):
        return _ip(me, them, 1, build_icmp(ICMPMessage(0, 0, t.rest, t.body)), ttl)
    assert isinstance(t, ICMPv6Message)
    message = build_icmpv6(ICMPv6Message(129, 0, t.rest, t.body), pack_address(me), pack_address(them))
    return _ip(me, them, 58, message, ttl)


def run_session(session: TraceSession, net: TraceNet, *, start: float = 0.0, limit: float = 120.0) -> float:
    """Drive ``session`` over ``net`` in virtual time until it finishes; the time it ended."""
    now = start
    pending: list[tuple[float, int, bytes]] = []
    order = itertools.count()
    for _ in range(100000):
        if session.finished or now > start + limit:
            break
        for _dst, datagram in session.due(now):
            for delay, reply in net.answer(datagram):
                heapq.heappush(pending, (now + delay, next(order), reply))
        session.expire(now)
        if session.finished:
            break
        step = now + max(session.time_until_next(now), 1e-6)
        if pending and pending[0][0] < step:
            step = pending[0][0]
        now = step
        while pending and pending[0][0] <= now:
            session.receive(heapq.heappop(pending)[2], now)
        session.expire(now)
    return now
