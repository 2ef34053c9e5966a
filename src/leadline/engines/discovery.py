"""Privileged IPv4 host discovery over real sockets: nmap's ping scan as root.

What goes out (nmap's documented behaviour):
  * a target on a directly connected Ethernet segment gets one broadcast
    ARP request and nothing else, whatever -P options were given, unless
    ARP is ruled out (--disable-arp-ping, --send-ip);
  * any other target gets the IP probe set: -PE -PP -PM -PS -PA -PU as
    given, or by default an ICMP echo request, a SYN to 443, an ACK to 80
    and an ICMP timestamp request;
  * one of our own addresses is up at once ("localhost-response").

A host is up on the first answer to any of its probes (an ICMP error sent
by the target itself counts: it is alive).  Silent hosts get the whole
set again after a timeout learned from the answers seen so far, until
their attempts run out.  Directly connected hosts are reported with their
MAC address: the ARP answer's sender, or the Ethernet source of the frame
that carried the IP reply.

Targets are a stream: hosts are admitted as the pacer allows, at most
``max_in_flight`` at once, and results leave in target order as soon as
every earlier host is decided, so a /16 costs the state of one window.
Pacing is ``core.ratecontrol.RateController``'s (--min-rate/--max-rate);
replies are matched by the probe modules' keyed cookies, so nothing but
the host table is kept per probe, and forged or stray packets are dropped.
"""

from __future__ import annotations

import errno
import heapq
import json
import os
import selectors
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leadline.config import DiscoveryProbe, Timing
from leadline.core.packet.ethernet import ETHERTYPE_ARP
from leadline.core.probes.base import ProbeContext, Reply
from leadline.core.probes.discovery import (
    ArpPing,
    DiscoveryModule,
    IcmpEchoPing,
    IcmpMaskPing,
    IcmpTimestampPing,
    TcpAckPing,
    TcpSynPing,
    UdpPing,
)
from leadline.core.ratecontrol import RateController
from leadline.core.timing import RttEstimator
from leadline.engines.packetio import attach_filter, close_in_background, protocol_filter
from leadline.engines.routes import LinkPath, RouteTable
from leadline.errors import PrivilegeError
from leadline.model import Reason
from leadline.core.evidence import PacketEvidence

__all__ = [
    "DEFAULT_IP_PROBES",
    "DiscoveryResult",
    "LinkPath",
    "RouteTable",
    "raw_discover",
]

# nmap's default probe set for IPv4 targets when run as root.
DEFAULT_IP_PROBES = (
    DiscoveryProbe("echo"),
    DiscoveryProbe("syn", (443,)),
    DiscoveryProbe("ack", (80,)),
    DiscoveryProbe("timestamp"),
)
DEFAULT_ATTEMPTS = 2  # the probe set once, then once more for a silent host
DEFAULT_MAX_IN_FLIGHT = 32_768
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_ARPHRD_ETHER = 1
_MAX_WAIT = 0.05
_RECEIVE_BATCH = 512
_SO_RCVBUFFORCE = 33
_IP_PROTOCOLS = {"echo": 1, "timestamp": 1, "netmask": 1, "syn": 6, "ack": 6, "udp": 17}


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """Whether one address is up, why (nmap's reason), and what we learned on the way."""

    address: str
    up: bool
    reason: Reason
    ttl: int | None = None
    latency: float | None = None
    mac: str | None = None  # nmap's spelling: upper case, colons


# -- probe plans ----------------------------------------------------------------------


def _module_for(kind: str) -> DiscoveryModule | None:
    return {
        "echo": IcmpEchoPing,
        "timestamp": IcmpTimestampPing,
        "netmask": IcmpMaskPing,
        "syn": TcpSynPing,
        "ack": TcpAckPing,
        "udp": UdpPing,
        "arp": ArpPing,
    }.get(kind, lambda: None)()  # type: ignore[return-value]


def ip_probe_plan(probes: Sequence[DiscoveryProbe]) -> list[tuple[str, int]]:
    """(kind, port) pairs sent to a routed target: the IP probes asked for, or nmap's defaults."""
    plan = [(p.kind, port) for p in probes if p.kind in _IP_PROTOCOLS for port in (p.ports or (0,))]
    if not plan:
        plan = [(p.kind, port) for p in DEFAULT_IP_PROBES for port in (p.ports or (0,))]
    return list(dict.fromkeys(plan))


# -- the engine -----------------------------------------------------------------------


@dataclass(slots=True)
class _Host:
    address: str
    path: LinkPath | None
    plan: list[tuple[str, int]]
    rounds: int = 0
    last_sent: float = 0.0
    deadline: float = 0.0
    negative: Reason | None = None
    negative_ttl: int | None = None
    result: DiscoveryResult | None = None
    queued: int = 0  # probes of the current round not yet sent


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    received: int = 0
    matched: int = 0


@dataclass
class _Sockets:
    ip_sender: socket.socket | None = None
    ip_receiver: socket.socket | None = None
    arp: dict[str, socket.socket] = field(default_factory=dict)

    def close(self) -> None:
        if self.ip_sender is not None:
            self.ip_sender.close()
        for sock in (self.ip_receiver, *self.arp.values()):  # packet sockets: slow to close
            if sock is not None:
                close_in_background(sock)


class _Sweep:
    """One run of the engine: the host window, the send queue, the deadlines."""

    def __init__(
        self,
        targets: Iterable[str],
        probes: Sequence[DiscoveryProbe],
        timing: Timing,
        *,
        arp: bool,
        routes: RouteTable,
        attempts: int,
        max_in_flight: int,
        stop: threading.Event | None,
        evidence: PacketEvidence | None,
        secret: bytes,
        clock: Callable[[], float],
    ) -> None:
        self.targets = iter(targets)
        self.exhausted = False
        self.arp = arp
        self.routes = routes
        self.ip_plan = ip_probe_plan(probes)
        self.attempts = max(1, attempts)
        self.max_in_flight = max(1, max_in_flight)
        self.stop = stop
        self.evidence = evidence
        self.secret = secret
        self.clock = clock
        self.rtt = RttEstimator(timing)
        self.rate = RateController.from_timing(timing)
        self.modules: dict[str, DiscoveryModule] = {}
        for kind in {kind for kind, _ in self.ip_plan} | {"arp"}:
            module = _module_for(kind)
            if module is not None:
                self.modules[kind] = module
        self.contexts: dict[str, ProbeContext] = {}
        self.window: deque[_Host] = deque()
        self.active: dict[str, _Host] = {}
        self.sendq: deque[tuple[_Host, int]] = deque()
        self.deadlines: list[tuple[float, int, _Host]] = []
        self.sequence = 0
        self.sockets = _Sockets()
        self.selector = selectors.DefaultSelector()
        self.counters = _Counters()
        self.start = clock()
        self.wall_offset = time.time() - self.start
        ip_protocols = {_IP_PROTOCOLS[kind] for kind, _ in self.ip_plan}
        self.ip_protocols = tuple(sorted(ip_protocols | {1}))
        self.icmp_kinds = [k for k in ("echo", "timestamp", "netmask", "syn", "ack", "udp") if k in self.modules]
        self.kinds_by_protocol = {
            1: self.icmp_kinds,
            6: [k for k in ("syn", "ack") if k in self.modules],
            17: [k for k in ("udp",) if k in self.modules],
        }

    # -- sockets ---------------------------------------------------------

    def _ip_sockets(self) -> tuple[socket.socket, socket.socket]:
        if self.sockets.ip_sender is None or self.sockets.ip_receiver is None:
            try:
                sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                receiver = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
            except PermissionError:
                raise PrivilegeError("raw host discovery needs root (or CAP_NET_RAW); use --unprivileged") from None
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            sender.setblocking(False)
            _grow_buffer(receiver)
            # Sent probes reach the pcap from the send side: the kernel may drop our own copies.
            attach_filter(receiver, protocol_filter(4, self.ip_protocols, outgoing=False))
            receiver.setblocking(False)
            _drain(receiver)
            self.selector.register(receiver, selectors.EVENT_READ, "ip")
            self.sockets.ip_sender, self.sockets.ip_receiver = sender, receiver
        return self.sockets.ip_sender, self.sockets.ip_receiver

    def _arp_socket(self, interface: str) -> socket.socket:
        sock = self.sockets.arp.get(interface)
        if sock is None:
            try:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_ARP))
            except PermissionError:
                raise PrivilegeError("ARP host discovery needs root (or CAP_NET_RAW); use --unprivileged") from None
            sock.bind((interface, ETHERTYPE_ARP))
            _grow_buffer(sock)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, "arp")
            self.sockets.arp[interface] = sock
        return sock

    def _context(self, path: LinkPath) -> ProbeContext:
        ctx = self.contexts.get(path.source)
        if ctx is None:
            ctx = ProbeContext(source_address=path.source, secret=self.secret, source_mac=path.source_mac)
            self.contexts[path.source] = ctx
        return ctx

    # -- the loop ----------------------------------------------------------

    def run(self) -> Iterator[DiscoveryResult]:
        try:
            while not (self.stop is not None and self.stop.is_set()):
                now = self.clock()
                self._send_due(now)
                self._expire(self.clock())
                yield from self._ready()
                if self.exhausted and not self.window:
                    return
                wait = min(_MAX_WAIT, self._time_until_next(self.clock()))
                if wait > 0:
                    self.selector.select(wait)  # readiness only: _receive drains every socket
                self._receive()
                self._expire(self.clock())
                yield from self._ready()
        finally:
            self.selector.close()
            self.sockets.close()
            if self.evidence is not None:
                self.evidence.flush()

    def _ready(self) -> Iterator[DiscoveryResult]:
        while self.window and self.window[0].result is not None:
            host = self.window.popleft()
            assert host.result is not None
            yield host.result

    def _time_until_next(self, now: float) -> float:
        waits = []
        if self.deadlines:
            waits.append(self.deadlines[0][0] - now)
        if self.sendq or (not self.exhausted and len(self.window) < self.max_in_flight):
            waits.append(self.rate.next_send_time(now) - now)
        return max(0.0, min(waits)) if waits else _MAX_WAIT

    def _admit(self, now: float) -> bool:
        """Take the next target into the window; False when there are none left."""
        while True:
            try:
                address = next(self.targets)
            except StopIteration:
                self.exhausted = True
                return False
            if address in self.active:
                continue
            path = self.routes.path_for(address)
            if address in self.routes.local:
                host = _Host(address, path, [])
                host.result = DiscoveryResult(address, True, Reason.LOCALHOST, None, None)
                self.window.append(host)
                return True
            if path is None:
                host = _Host(address, None, [])
                host.result = DiscoveryResult(address, False, Reason.NET_UNREACH)
                self.window.append(host)
                return True
            use_arp = self.arp and path.ethernet_neighbour and path.source_mac is not None
            host = _Host(address, path, [("arp", 0)] if use_arp else self.ip_plan)
            self.window.append(host)
            self.active[address] = host
            self._queue_round(host)
            return True

    def _queue_round(self, host: _Host) -> None:
        host.rounds += 1
        host.queued = len(host.plan)
        for index in range(len(host.plan)):
            self.sendq.append((host, index))

    def _send_due(self, now: float) -> None:
        budget = self.rate.allowed(now)
        while budget > 0:
            if not self.sendq:
                if self.exhausted or len(self.window) >= self.max_in_flight or not self._admit(now):
                    break
                continue
            host, index = self.sendq.popleft()
            if host.result is not None:
                continue
            self._send(host, index, now)
            budget -= 1

    def _send(self, host: _Host, index: int, now: float) -> None:
        kind, port = host.plan[index]
        assert host.path is not None
        ctx = self._context(host.path)
        probe = self.modules[kind].build(host.address, port, host.rounds - 1, ctx)
        try:
            if kind == "arp":
                self._arp_socket(host.path.interface).send(probe.packet)
            else:
                sender, _ = self._ip_sockets()
                sender.sendto(probe.packet, (host.address, 0))
        except OSError as exc:
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES):
                raise
            # lost on our side (or refused: a broadcast address); the next round or the timeout decides
        self.counters.sent += 1
        self.rate.on_send(now)
        host.last_sent = now
        host.queued -= 1
        if self.evidence is not None:
            if self.evidence.traces:
                self.evidence.sent(probe.packet, now - self.start, frame=kind == "arp")
            if self.evidence.captures and kind != "arp":
                self.evidence.record(probe.packet, now + self.wall_offset)
        if host.queued == 0:
            host.deadline = now + self.rtt.timeout()
            self.sequence += 1
            heapq.heappush(self.deadlines, (host.deadline, self.sequence, host))

    def _expire(self, now: float) -> None:
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, host = heapq.heappop(self.deadlines)
            if host.result is not None or host.deadline != deadline:
                continue
            self.rate.on_timeout(now)
            if host.rounds < self.attempts:
                self._queue_round(host)
                continue
            reason = host.negative or Reason.NO_RESPONSE
            self._finish(host, DiscoveryResult(host.address, False, reason, host.negative_ttl))

    def _finish(self, host: _Host, result: DiscoveryResult) -> None:
        host.result = result
        self.active.pop(host.address, None)

    def _receive(self) -> None:
        arp_sockets = list(self.sockets.arp.values())
        receiver = self.sockets.ip_receiver
        if receiver is not None:
            for _ in range(_RECEIVE_BATCH):
                try:
                    datagram, link = receiver.recvfrom(65535)
                except BlockingIOError:
                    break
                if link[2] == _PACKET_OUTGOING:
                    continue
                self._on_datagram(datagram, link, self.clock())
        for sock in arp_sockets:
            for _ in range(_RECEIVE_BATCH):
                try:
                    frame, link = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if link[2] == _PACKET_OUTGOING:
                    continue
                self._on_frame(frame, self.clock())

    def _on_datagram(self, datagram: bytes, link: tuple, now: float) -> None:  # type: ignore[type-arg]
        self.counters.received += 1
        if len(datagram) < 20 or datagram[0] >> 4 != 4:
            return
        ctx = self.contexts.get(socket.inet_ntoa(datagram[16:20]))
        if ctx is None:
            return
        if self.evidence is not None and self.evidence.captures:
            self.evidence.record(datagram, now + self.wall_offset)
        for kind in self.kinds_by_protocol.get(datagram[9], ()):
            matched = self.modules[kind].match(datagram, ctx)
            if matched is None:
                continue
            key, reply = matched
            host = self.active.get(key.address)
            if host is None or host.result is not None:
                return
            if self.evidence is not None and self.evidence.traces:
                self.evidence.received(datagram, now - self.start)
            mac = None
            if host.path is not None and host.path.ethernet_neighbour and reply.src == host.address:
                hardware = link[4] if len(link) > 4 else b""
                if len(hardware) == 6:
                    mac = ":".join(f"{b:02X}" for b in hardware)
            self._on_reply(host, kind, reply, mac, now)
            return

    def _on_frame(self, frame: bytes, now: float) -> None:
        self.counters.received += 1
        module = self.modules["arp"]
        for ctx in self.contexts.values():
            matched = module.match(frame, ctx)
            if matched is None:
                continue
            key, reply = matched
            host = self.active.get(key.address)
            if host is None or host.result is not None or host.plan[0][0] != "arp":
                return
            if self.evidence is not None and self.evidence.traces:
                self.evidence.received(frame, now - self.start, frame=True)
            self._on_reply(host, "arp", reply, reply.mac.upper() if reply.mac else None, now)
            return

    def _on_reply(self, host: _Host, kind: str, reply: Reply, mac: str | None, now: float) -> None:
        self.counters.matched += 1
        rtt = max(0.0, now - host.last_sent)
        verdict = self.modules[kind].classify(reply)
        up = verdict.up or reply.src == host.address  # an error sent by the target itself: it is alive
        if not up:
            host.negative, host.negative_ttl = verdict.reason, verdict.ttl
            return
        if host.rounds == 1:  # Karn: a retransmitted round's answer is ambiguous
            self.rtt.update(rtt)
        self.rate.on_answer(now, rtt)
        ttl = verdict.ttl if kind != "arp" else 0
        self._finish(host, DiscoveryResult(host.address, True, verdict.reason, ttl, rtt, mac))


def _grow_buffer(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)


def _drain(sock: socket.socket) -> None:
    """Drop what arrived before the filter was attached."""
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return


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
) -> Iterator[DiscoveryResult]:
    """Decide which IPv4 ``targets`` (canonical dotted quads) are up; one result per address, in target order.

    ``probes`` are the IP probes for routed targets (empty: nmap's default
    set); ``arp`` allows ARP for directly connected Ethernet targets.
    """
    if attempts is None:
        attempts = min(DEFAULT_ATTEMPTS, timing.max_retries + 1)
    window = max_in_flight or timing.max_parallelism or DEFAULT_MAX_IN_FLIGHT
    sweep = _Sweep(
        targets,
        probes,
        timing,
        arp=arp,
        routes=routes or RouteTable.load(),
        attempts=attempts,
        max_in_flight=window,
        stop=stop,
        evidence=evidence,
        secret=os.urandom(16),
        clock=clock,
    )
    return sweep.run()
