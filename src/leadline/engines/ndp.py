"""Privileged IPv6 host discovery: neighbour solicitation on the link, pings beyond it.

What goes out (nmap's documented behaviour for ``-6`` as root):
  * a target on a directly connected Ethernet segment gets a neighbour
    solicitation to its solicited-node multicast group (RFC 4861 §7.2.2)
    and nothing else; the solicited advertisement that answers names the
    target's MAC address (reason ``nd-response``);
  * any other target gets an ICMPv6 echo request, a SYN to 443 and an ACK
    to 80 (the IPv4 default set without the timestamp request, which has
    no ICMPv6 form);
  * one of our own addresses is up at once (``localhost-response``).

Silent hosts get their probes again after a timeout (``core.timing``'s
initial RTT timeout) until their attempts run out.  Replies are matched
by the probe modules of ``core.probes.discovery`` (keyed cookies for the
pings; for ND the target address, hop limit 255 and our address as
destination), so stray or forged packets are dropped and a malformed one
never stops the sweep.

Solicitations leave through an AF_PACKET socket addressed to the group's
33:33:ff:xx:xx:xx MAC on the target's interface, so no multicast route or
scope id is involved; pings leave through a raw IPv6 socket with our
header included, exactly as built.
"""

from __future__ import annotations

import heapq
import ipaddress
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.probes.base import ProbeContext, Reply
from leadline.core.probes.discovery import (
    DiscoveryModule,
    HostVerdict,
    IcmpEchoPing,
    NeighborPing,
    TcpAckPing,
    TcpSynPing,
    nd_multicast_mac,
)
from leadline.engines.discovery import DiscoveryResult
from leadline.engines.packetio import attach_filter, protocol_filter
from leadline.engines.routes import Ipv6Routes, LinkRoute, local_ipv6_addresses, source_address_for
from leadline.errors import PrivilegeError, UsageError
from leadline.model import Reason

__all__ = ["LinkRoute", "Ipv6Routes", "ndp_discover", "DEFAULT_ATTEMPTS"]

DEFAULT_ATTEMPTS = 2  # a neighbour that misses two solicitations a timeout apart is gone
_ETH_P_IPV6 = 0x86DD
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_ARPHRD_ETHER = 1
_SO_RCVBUFFORCE = 33
_MAX_WAIT = 0.05  # never sleep longer, so a stop request is noticed quickly
_RECEIVE_BATCH = 512
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200
# The routed-target probe set: (module, port).
_ROUTED_PROBES: tuple[tuple[DiscoveryModule, int], ...] = (
    (IcmpEchoPing(), 0),
    (TcpSynPing(), 443),
    (TcpAckPing(), 80),
)
_NEIGHBOR = NeighborPing()


@dataclass(slots=True)
class _Host:
    address: str
    probes: tuple[tuple[DiscoveryModule, int], ...]
    interface: str | None  # set for ND: where the solicitation goes
    ctx: ProbeContext
    attempt: int = 0
    sent_at: float = 0.0
    errors: list[HostVerdict] = field(default_factory=list)


def _interface_mac(interface: str) -> str:
    try:
        return Path(f"/sys/class/net/{interface}/address").read_text().strip()
    except OSError:
        raise UsageError(f"cannot read the MAC address of {interface}") from None


def _open_sockets() -> tuple[socket.socket, socket.socket, socket.socket]:
    """(raw IPv6 sender, AF_PACKET link sender, AF_PACKET receiver)."""
    try:
        raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        link = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IPV6))
        receiver = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
    except PermissionError as exc:
        raise PrivilegeError("IPv6 host discovery with raw packets needs root (or CAP_NET_RAW)") from exc
    try:
        receiver.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 4 << 20)
    except OSError:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    attach_filter(receiver, protocol_filter(6, (58, 6)))
    for sock in (raw, link, receiver):
        sock.setblocking(False)
    while True:  # whatever arrived before the filter was attached
        try:
            receiver.recv(65535)
        except BlockingIOError:
            break
    return raw, link, receiver


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def ndp_discover(
    hosts: Sequence[str],
    timing: Timing | None = None,
    *,
    stop: threading.Event | None = None,
    attempts: int | None = None,
    routes: Ipv6Routes | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[DiscoveryResult]:
    """Decide which IPv6 ``hosts`` are up; one result per distinct address, as each is decided.

    On-link Ethernet targets are asked by neighbour solicitation, the rest
    by nmap's IPv6 ping set.  Every host is probed at once (the caller
    passes one host group); the sweep ends after the last attempt's
    timeout, or as soon as ``stop`` is set (undecided hosts are then not
    reported).
    """
    timing = timing or TIMING_TEMPLATES[3]
    if attempts is None:
        attempts = min(DEFAULT_ATTEMPTS, timing.max_retries + 1)
    timeout = max(timing.initial_rtt_timeout, timing.min_rtt_timeout)
    routes = routes or Ipv6Routes.load()
    local = local_ipv6_addresses()
    secret = os.urandom(16)
    contexts: dict[str, ProbeContext] = {}
    waiting: dict[str, _Host] = {}
    decided: list[DiscoveryResult] = []
    for text in dict.fromkeys(hosts):
        try:
            address = str(ipaddress.IPv6Address(text))
        except ValueError:
            raise UsageError(f"{text!r} is not an IPv6 address; IPv6 discovery takes IPv6 targets only") from None
        if address in local:
            decided.append(DiscoveryResult(address, True, Reason.LOCALHOST))  # no latency, as nmap shows none
            continue
        route = routes.route_for(address)
        if route is None:
            decided.append(DiscoveryResult(address, False, Reason.NO_RESPONSE))
            continue
        source = source_address_for(address)
        if route.ethernet_neighbour:
            key = f"{source}%{route.interface}"
            if key not in contexts:
                contexts[key] = ProbeContext(source, secret, family=6, source_mac=_interface_mac(route.interface))
            waiting[address] = _Host(address, ((_NEIGHBOR, 0),), route.interface, contexts[key])
        else:
            if source not in contexts:
                contexts[source] = ProbeContext(source, secret, family=6)
            waiting[address] = _Host(address, _ROUTED_PROBES, None, contexts[source])
    yield from decided
    if waiting:
        yield from _Sweep(waiting, attempts, timeout, stop, clock).run()


class _Sweep:
    """One round of probes per attempt for every waiting host, and the replies that settle them."""

    def __init__(self, hosts: dict[str, _Host], attempts: int, timeout: float,
                 stop: threading.Event | None, clock: Callable[[], float]) -> None:
        self.hosts = hosts
        self.attempts = attempts
        self.timeout = timeout
        self.stop = stop
        self.clock = clock
        self.contexts = list({id(h.ctx): h.ctx for h in hosts.values()}.values())
        self.deadlines: list[tuple[float, str]] = []

    def run(self) -> Iterator[DiscoveryResult]:
        raw, link, receiver = _open_sockets()
        selector = selectors.DefaultSelector()
        selector.register(receiver, selectors.EVENT_READ)
        try:
            now = self.clock()
            for host in self.hosts.values():
                self._send(host, raw, link, now)
            while self.hosts and not (self.stop is not None and self.stop.is_set()):
                yield from self._expire(raw, link)
                if not self.hosts:
                    break
                wait = min(_MAX_WAIT, max(0.0, self.deadlines[0][0] - self.clock()))
                if wait > 0:
                    selector.select(wait)
                yield from self._receive(receiver)
        finally:
            selector.close()
            for sock in (raw, link, receiver):
                sock.close()

    def _send(self, host: _Host, raw: socket.socket, link: socket.socket, now: float) -> None:
        host.attempt += 1
        host.sent_at = now
        for module, port in host.probes:
            probe = module.build(host.address, port, host.attempt - 1, host.ctx)
            try:
                if host.interface is not None:
                    group_mac = _mac_bytes(nd_multicast_mac(host.address))
                    link.sendto(probe.packet, (host.interface, _ETH_P_IPV6, 0, 0, group_mac))
                else:
                    raw.sendto(probe.packet, (host.address, 0))
            except OSError:
                pass  # lost on our side (buffer full, no route): the next attempt retries
        heapq.heappush(self.deadlines, (now + self.timeout, host.address))

    def _expire(self, raw: socket.socket, link: socket.socket) -> Iterator[DiscoveryResult]:
        now = self.clock()
        while self.deadlines and self.deadlines[0][0] <= now:
            _, address = heapq.heappop(self.deadlines)
            host = self.hosts.get(address)
            if host is None:
                continue
            if host.attempt < self.attempts:
                self._send(host, raw, link, now)
                continue
            del self.hosts[address]
            error = host.errors[0] if host.errors else None
            yield DiscoveryResult(address, False, error.reason if error else Reason.NO_RESPONSE,
                                 error.ttl if error else None)

    def _receive(self, receiver: socket.socket) -> Iterator[DiscoveryResult]:
        for _ in range(_RECEIVE_BATCH):
            try:
                datagram, link_address = receiver.recvfrom(65535)
            except BlockingIOError:
                return
            if link_address[2] == _PACKET_OUTGOING:
                continue
            received = self.clock()
            for address, verdict, reply in self._match(datagram):
                host = self.hosts.get(address)
                if host is None:
                    continue
                if not verdict.up:
                    host.errors.append(verdict)
                    continue
                del self.hosts[address]
                mac = reply.mac.upper() if reply.mac else None
                yield DiscoveryResult(address, True, verdict.reason, verdict.ttl, received - host.sent_at, mac)

    def _match(self, datagram: bytes) -> Iterator[tuple[str, HostVerdict, Reply]]:
        """Every (host, verdict, reply) this datagram answers; usually none or one."""
        for ctx in self.contexts:
            modules = (_NEIGHBOR,) if ctx.source_mac else tuple(m for m, _ in _ROUTED_PROBES)
            for module in modules:
                matched = module.match(datagram, ctx)
                if matched is not None:
                    key, reply = matched
                    yield key.address, module.classify(reply), reply
                    return
