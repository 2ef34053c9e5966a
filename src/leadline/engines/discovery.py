"""Privileged host discovery over real sockets: nmap's ping scan as root, IPv4 and the loop IPv6 shares.

What goes out (nmap's documented behaviour):
  * a target on a directly connected Ethernet segment gets one broadcast
    ARP request and nothing else, whatever -P options were given, unless
    ARP is ruled out (--disable-arp-ping, --send-ip);
  * any other target gets the IP probe set: -PE -PP -PM -PS -PA -PU as
    given, or by default an ICMP echo request, a SYN to 443, an ACK to 80
    and an ICMP timestamp request;
  * one of our own addresses is up at once ("localhost-response").

Every decision (pacing, spacing, retries, timeouts, when a host is up)
is ``core.discoverysession.DiscoverySession``'s; this module turns
targets into plans (routes are I/O) and runs the thin loop that moves
the session's probes and replies over ``packetio``'s sockets, for IPv4
here and for IPv6 in ``engines.ndp``.  Directly connected hosts are
reported with their MAC address: the ARP answer's sender, or the
Ethernet source of the frame that carried the IP reply.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from leadline.config import DiscoveryProbe, Timing
from leadline.core.evidence import PacketEvidence
from leadline.core.discoverysession import (
    DEFAULT_MAX_IN_FLIGHT,
    DiscoveryResult,
    DiscoverySession,
    Heard,
    HostPlan,
    Outgoing,
    probe_protocols,
)
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.discovery import nd_multicast_mac
from leadline.core.ratecontrol import RateController
from leadline.engines.packetio import MAX_WAIT, RECEIVE_BATCH, PACKET_OUTGOING, Capture, LinkSenders, open_ip_sender
from leadline.engines.routes import LinkPath, RouteTable
from leadline.model import Reason

__all__ = [
    "DEFAULT_IP_PROBES",
    "DiscoveryResult",
    "LinkPath",
    "RouteTable",
    "ip_probe_plan",
    "raw_discover",
    "run_discovery",
]

# nmap's default probe set for IPv4 targets when run as root.
DEFAULT_IP_PROBES = (
    DiscoveryProbe("echo"),
    DiscoveryProbe("syn", (443,)),
    DiscoveryProbe("ack", (80,)),
    DiscoveryProbe("timestamp"),
)
DEFAULT_ATTEMPTS = 2  # the probe set once, then once more for a silent host
_IP_KINDS = ("echo", "timestamp", "netmask", "syn", "ack", "udp")
_SEND_LOSSES = (errno.ENOBUFS, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES)


def ip_probe_plan(probes: Sequence[DiscoveryProbe], defaults: Sequence[DiscoveryProbe] = DEFAULT_IP_PROBES,
                  kinds: Sequence[str] = _IP_KINDS) -> tuple[tuple[str, int], ...]:
    """(kind, port) pairs sent to a routed target: the IP probes asked for among ``kinds``, or ``defaults``."""
    plan = [(p.kind, port) for p in probes if p.kind in kinds for port in (p.ports or (0,))]
    if not plan:
        plan = [(p.kind, port) for p in defaults for port in (p.ports or (0,))]
    return tuple(dict.fromkeys(plan))


def _ipv4_plans(targets: Iterable[str], ip_plan: tuple[tuple[str, int], ...], *, arp: bool,
                routes: RouteTable, secret: bytes) -> Iterator[HostPlan]:
    contexts: dict[tuple[str, str | None], ProbeContext] = {}
    for address in targets:
        if address in routes.local:
            yield HostPlan(address, decided=DiscoveryResult(address, True, Reason.LOCALHOST))
            continue
        path = routes.path_for(address)
        if path is None:
            yield HostPlan(address, decided=DiscoveryResult(address, False, Reason.NET_UNREACH))
            continue
        key = (path.source, path.source_mac)
        ctx = contexts.get(key)
        if ctx is None:
            ctx = contexts[key] = ProbeContext(source_address=path.source, secret=secret, source_mac=path.source_mac)
        use_arp = arp and path.ethernet_neighbour and path.source_mac is not None
        probes = (("arp", 0),) if use_arp else ip_plan
        yield HostPlan(address, probes, ctx, path.interface, path.ethernet_neighbour)


def raw_discover(
    targets: Iterable[str],
    probes: Sequence[DiscoveryProbe],
    timing: Timing,
    *,
    arp: bool = True,
    stop: threading.Event | None = None,
    evidence: PacketEvidence | None = None,
    routes: RouteTable | None = None,
    attempts: int | None = None,
    max_in_flight: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    source_share: tuple[int, int] | None = None,
) -> Iterator[DiscoveryResult]:
    """Decide which IPv4 ``targets`` (canonical dotted quads) are up; one result per address, in target order.

    ``probes`` are the IP probes for routed targets (empty: nmap's default
    set); ``arp`` allows ARP for directly connected Ethernet targets.
    """
    if attempts is None:
        attempts = min(DEFAULT_ATTEMPTS, timing.max_retries + 1)
    window = max_in_flight or timing.max_parallelism or DEFAULT_MAX_IN_FLIGHT
    ip_plan = ip_probe_plan(probes)
    plans = _ipv4_plans(targets, ip_plan, arp=arp, routes=routes or RouteTable.load(), secret=os.urandom(16))
    session = DiscoverySession(plans, timing, rate=RateController.from_timing(timing), attempts=attempts, max_in_flight=window)
    kinds = {kind for kind, _ in ip_plan}
    return run_discovery(session, 4, probe_protocols(kinds, 4), stop=stop, evidence=evidence, clock=clock,
                         needs="raw host discovery needs root (or CAP_NET_RAW); use --unprivileged",
                         source_share=source_share)


def run_discovery(
    session: DiscoverySession,
    family: int,
    protocols: tuple[int, ...],
    *,
    stop: threading.Event | None,
    evidence: PacketEvidence | None,
    clock: Callable[[], float],
    needs: str,
    source_share: tuple[int, int] | None = None,
) -> Iterator[DiscoveryResult]:
    """Drive ``session`` over real sockets until every host is decided (or ``stop`` is set).

    ``source_share=(r, K)``: every target is r modulo K as an integer, so the
    kernel may drop replies from other addresses before we read them.
    """
    loop = _Loop(session, family, protocols, evidence, clock, needs, source_share)
    try:
        while not (stop is not None and stop.is_set()):
            loop.send()
            session.expire(clock())
            yield from session.results()
            if session.finished:
                return
            loop.capture.wait(min(MAX_WAIT, session.time_until_next(clock())))
            loop.receive()
            session.expire(clock())
            yield from session.results()
    finally:
        loop.close()


class _Loop:
    """The sockets of one discovery run and the moves between them and the session."""

    def __init__(self, session: DiscoverySession, family: int, protocols: tuple[int, ...],
                 evidence: PacketEvidence | None, clock: Callable[[], float], needs: str,
                 source_share: tuple[int, int] | None = None) -> None:
        self.session = session
        self.family = family
        self.evidence = evidence
        self.clock = clock
        self.needs = needs
        # Sent probes reach the pcap from the send side: the capture drops our own copies.
        self.capture = Capture(family, protocols, needs=needs, source_share=source_share)
        self.links = LinkSenders(needs)
        self.sender: socket.socket | None = None
        self.start = clock()
        self.wall_offset = time.time() - self.start

    def send(self) -> None:
        now = self.clock()
        for out in self.session.due(now):
            try:
                self._send(out)
            except OSError as exc:
                if exc.errno not in _SEND_LOSSES:
                    raise
                # lost on our side (or refused: a broadcast address); the next round or the timeout decides
            evidence = self.evidence
            if evidence is not None:
                if evidence.traces:
                    evidence.sent(out.packet, now - self.start, frame=out.kind == "arp")
                if evidence.captures and out.kind != "arp":
                    evidence.record(out.packet, now + self.wall_offset)

    def _send(self, out: Outgoing) -> None:
        if out.kind == "arp":
            assert out.interface is not None
            fresh = out.interface not in self.links.arp
            sock = self.links.arp_socket(out.interface)
            if fresh:
                self.capture.watch(sock)  # its replies wake the loop too
            sock.send(out.packet)
            return
        self.capture.listen(out.interface)  # hear the answer where the route leads, before asking
        if out.kind == "nd":
            assert out.interface is not None
            mac = bytes(int(part, 16) for part in nd_multicast_mac(out.address).split(":"))
            self.links.send_ipv6(out.packet, out.interface, mac)
            return
        if self.sender is None:
            self.sender = open_ip_sender(self.family, self.needs)
        self.sender.sendto(out.packet, (out.address, 0))

    def receive(self) -> None:
        session, evidence = self.session, self.evidence
        for packet in self.capture.packets(RECEIVE_BATCH):
            now = self.clock()
            heard = session.receive(packet.data, now, hardware=packet.hardware)
            if evidence is not None and heard is not Heard.NOT_OURS:
                if evidence.captures:
                    evidence.record(packet.data, now + self.wall_offset)
                if evidence.traces and heard is Heard.ANSWER:
                    evidence.received(packet.data, now - self.start)
        for sock in list(self.links.arp.values()):
            for _ in range(RECEIVE_BATCH):
                try:
                    frame, link = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if link[2] == PACKET_OUTGOING:
                    continue
                now = self.clock()
                if session.receive_frame(frame, now) is Heard.ANSWER and evidence is not None and evidence.traces:
                    evidence.received(frame, now - self.start, frame=True)

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        self.capture.close()
        self.links.close()
        if self.evidence is not None:
            self.evidence.flush()
