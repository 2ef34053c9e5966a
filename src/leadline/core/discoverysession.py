"""Host discovery as a state machine: which probe goes to which host when, and when a host is decided.

One session serves IPv4 (ARP, or the IP probes -PE -PP -PM -PS -PA -PU)
and IPv6 (neighbour solicitation, or ICMPv6 echo and TCP/UDP probes).
An engine drives it with a clock it owns and sockets it owns:

    session = DiscoverySession(plans, timing, rate=RateController.from_timing(timing))
    while not session.finished:
        for out in session.due(now):             # Outgoing: address, kind, packet, interface
            send(out)
        for datagram in capture:                  # IP datagrams (ARP frames: receive_frame)
            session.receive(datagram, now, hardware=link_source)
        session.expire(now)
        yield from session.results()              # DiscoveryResult, in target order
        wait(session.time_until_next(now))

The engine resolves each target beforehand into a ``HostPlan`` (which
probes, from which source, over which interface; or a result already
known, such as one of our own addresses): that needs routing tables,
which are I/O.  The session never touches a socket or reads a clock.

Contract and invariants:
  * every plan handed in yields exactly one ``DiscoveryResult``, and
    ``results()`` hands them out in the order the plans came;
  * a host is up at its first answer (an ICMP error the target itself
    sent counts: it is alive); from then on no probe goes to it: probes
    still due to it are dropped, not sent;
  * a host's probes of one round are spaced by about one expected
    round-trip time (never more than the timeout divided among them), so
    a host that answers its first probe type is never sent the others:
    any number of -P types costs about one on a network of answering
    hosts;
  * a silent host gets its whole plan again after a timeout learned from
    unambiguous answers (first rounds only, Karn's rule), until
    ``attempts`` rounds were sent; then it is down, with the last error
    an intermediate router sent about it as the reason, if any;
  * at most ``max_in_flight`` hosts are held at once, so a /16 costs the
    state of one window; hosts are admitted only as the pacer allows;
  * one pacing stack: ``core.ratecontrol.RateController`` (--min-rate,
    --max-rate, --scan-delay), told of every send, every answer and every
    round that timed out;
  * replies are matched by the probe modules' keyed cookies (ARP and ND
    by the address asked about and addressed to us); stray, forged or
    malformed packets change nothing.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from leadline.config import Timing
from leadline.core.probes.base import ProbeContext, Reply
from leadline.core.probes.discovery import (
    ArpPing,
    DiscoveryModule,
    HostVerdict,
    IcmpEchoPing,
    IcmpMaskPing,
    IcmpTimestampPing,
    NeighborPing,
    TcpAckPing,
    TcpSynPing,
    UdpPing,
)
from leadline.core.ratecontrol import RateController
from leadline.core.timing import RttEstimator
from leadline.model import Reason

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DiscoveryResult",
    "DiscoverySession",
    "Heard",
    "HostPlan",
    "Outgoing",
    "probe_protocols",
]

DEFAULT_MAX_IN_FLIGHT = 32_768
_MIN_GAP = 0.005  # seconds between two probes of one host, at least: answers wait in our socket too
_MODULES: dict[str, DiscoveryModule] = {
    "echo": IcmpEchoPing(),
    "timestamp": IcmpTimestampPing(),
    "netmask": IcmpMaskPing(),
    "syn": TcpSynPing(),
    "ack": TcpAckPing(),
    "udp": UdpPing(),
    "arp": ArpPing(),
    "nd": NeighborPing(),
}
# Which modules may recognise a datagram, by its IP protocol (ICMP errors quote any probe).
_KINDS_BY_PROTOCOL: dict[int, tuple[str, ...]] = {
    1: ("echo", "timestamp", "netmask", "syn", "ack", "udp"),
    58: ("nd", "echo", "syn", "ack", "udp"),
    6: ("syn", "ack"),
    17: ("udp",),
}
_PROTOCOLS = {"echo": 1, "timestamp": 1, "netmask": 1, "syn": 6, "ack": 6, "udp": 17, "nd": 58}


def probe_protocols(kinds: Iterable[str], family: int) -> tuple[int, ...]:
    """The IP protocols a capture must pass for replies to probes of ``kinds`` (ICMP always)."""
    icmp = 58 if family == 6 else 1
    others = {_PROTOCOLS[kind] for kind in kinds if kind in _PROTOCOLS and _PROTOCOLS[kind] not in (1, 58)}
    return tuple(sorted({icmp} | others))


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """Whether one address is up, why (nmap's reason), and what we learned on the way."""

    address: str
    up: bool
    reason: Reason
    ttl: int | None = None
    latency: float | None = None
    mac: str | None = None  # nmap's spelling: upper case, colons


@dataclass(frozen=True, slots=True)
class HostPlan:
    """What to do about one target: its probes as (kind, port), or a result already known."""

    address: str
    probes: tuple[tuple[str, int], ...] = ()
    ctx: ProbeContext | None = None
    interface: str | None = None  # where its route leads: link-layer probes leave there, replies arrive there
    neighbour: bool = False  # a directly connected Ethernet neighbour: its own frames carry its MAC
    decided: DiscoveryResult | None = None


class Outgoing(NamedTuple):
    """One probe to send: an IP datagram, or for ``arp`` a whole Ethernet frame, or for ``nd`` an IPv6
    datagram to the target's solicited-node group, framed for ``interface``."""

    address: str
    kind: str
    packet: bytes
    interface: str | None


class Heard(enum.IntEnum):
    """What ``receive`` made of a packet."""

    NOT_OURS = 0  # not addressed to any source address of ours
    OURS = 1  # addressed to us, but not an answer to an undecided host's probe
    ANSWER = 2  # an answer (or an error report) about a host being probed


@dataclass(slots=True)
class _Host:
    plan: HostPlan
    kinds: frozenset[str]
    round: int = 0
    next_index: int = 0  # the next probe of the current round
    last_sent: float = 0.0
    sent_at: dict[tuple[str, int], float] = field(default_factory=dict)
    negative: HostVerdict | None = None
    result: DiscoveryResult | None = None


class DiscoverySession:
    """Decides which of a stream of planned hosts are up; see the module docstring for the contract."""

    def __init__(
        self,
        plans: Iterable[HostPlan],
        timing: Timing,
        *,
        rate: RateController,
        attempts: int = 2,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self._plans = iter(plans)
        self._exhausted = False
        self.rate = rate
        self.rtt = RttEstimator(timing)
        self.attempts = max(1, attempts)
        self.max_in_flight = max(1, max_in_flight)
        self._window: deque[_Host] = deque()
        self._active: dict[str, _Host] = {}
        self._contexts: dict[str, list[ProbeContext]] = {}
        self._last_ctx: ProbeContext | None = None
        # (time, tie-breaker, host, round): the next probe of a round is due, or the round timed out.
        self._sends: list[tuple[float, int, _Host, int]] = []
        self._deadlines: list[tuple[float, int, _Host, int]] = []
        self._sequence = 0
        self.sent = 0
        self.answers = 0

    # -- what the engine calls --------------------------------------------

    @property
    def finished(self) -> bool:
        return self._exhausted and not self._window

    def due(self, now: float) -> list[Outgoing]:
        """The probes to send now: due probes of hosts in the window first, then new hosts, as paced."""
        out: list[Outgoing] = []
        budget = self.rate.allowed(now)
        while budget > 0:
            if self._sends and self._sends[0][0] <= now:
                _, _, host, round_ = heapq.heappop(self._sends)
                if host.result is not None or round_ != host.round:
                    continue  # decided meanwhile: what was still due is not sent
            elif not self._admit():
                break
            else:
                host = self._window[-1]
                if host.result is not None:
                    continue
                self._start_round(host)
            out.append(self._send(host, now))
            budget -= 1
        return out

    def receive(self, datagram: bytes, now: float, *, hardware: bytes = b"") -> Heard:
        """A captured IP datagram; ``hardware`` is the link-layer source address it came from."""
        contexts = self._contexts.get(_destination(datagram), ())
        if not contexts:
            return Heard.NOT_OURS
        protocol = datagram[6] if datagram[0] >> 4 == 6 else datagram[9]
        for kind in _KINDS_BY_PROTOCOL.get(protocol, ()):
            module = _MODULES[kind]
            for ctx in contexts:
                matched = module.match(datagram, ctx)
                if matched is not None:
                    key, reply = matched
                    return self._on_reply(key.address, kind, key.port, reply, hardware, now)
        return Heard.OURS

    def receive_frame(self, frame: bytes, now: float) -> Heard:
        """A captured ARP frame."""
        module = _MODULES["arp"]
        for contexts in self._contexts.values():
            for ctx in contexts:
                if ctx.source_mac is None:
                    continue
                matched = module.match(frame, ctx)
                if matched is not None:
                    key, reply = matched
                    return self._on_reply(key.address, "arp", 0, reply, b"", now)
        return Heard.NOT_OURS

    def expire(self, now: float) -> None:
        """Rounds whose timeout passed: send the plan again, or decide the host is down."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, host, round_ = heapq.heappop(self._deadlines)
            if host.result is not None or round_ != host.round:
                continue
            self.rate.on_timeout(now)
            if host.round < self.attempts:
                self._start_round(host)
                self._push(self._sends, now, host)
                continue
            verdict = host.negative
            reason = verdict.reason if verdict is not None else Reason.NO_RESPONSE
            self._finish(host, DiscoveryResult(host.plan.address, False, reason, verdict.ttl if verdict else None))

    def results(self) -> Iterator[DiscoveryResult]:
        """Results decided so far whose every predecessor is decided too, in target order."""
        window = self._window
        while window and window[0].result is not None:
            result = window.popleft().result
            assert result is not None
            yield result

    def time_until_next(self, now: float) -> float:
        """Seconds until the session has something to do without a packet arriving."""
        waits = []
        if self._deadlines:
            waits.append(self._deadlines[0][0] - now)
        if self._sends:
            waits.append(max(self._sends[0][0], self.rate.next_send_time(now)) - now)
        if not self._exhausted and len(self._window) < self.max_in_flight:
            waits.append(self.rate.next_send_time(now) - now)
        return max(0.0, min(waits)) if waits else 0.05

    def decided(self, address: str) -> bool:
        """Whether ``address`` is no longer being probed (decided, or never admitted)."""
        return address not in self._active

    # -- internals ------------------------------------------------------------

    def _admit(self) -> bool:
        """Take the next plan into the window; False when none may or can be taken."""
        if self._exhausted or len(self._window) >= self.max_in_flight:
            return False
        for plan in self._plans:
            if plan.address in self._active:
                continue  # a repeat of a host being probed: its result will serve
            host = _Host(plan, frozenset(kind for kind, _ in plan.probes))
            self._window.append(host)
            if plan.decided is not None or plan.ctx is None or not plan.probes:
                host.result = plan.decided or DiscoveryResult(plan.address, False, Reason.NO_RESPONSE)
                return True
            self._active[plan.address] = host
            if plan.ctx is not self._last_ctx:  # plans share a handful of contexts: register each once
                self._last_ctx = plan.ctx
                contexts = self._contexts.setdefault(_canonical(plan.ctx.source_address), [])
                if all(ctx is not plan.ctx for ctx in contexts):
                    contexts.append(plan.ctx)
            return True
        self._exhausted = True
        return False

    def _start_round(self, host: _Host) -> None:
        host.round += 1
        host.next_index = 0

    def _push(self, heap: list[tuple[float, int, _Host, int]], at: float, host: _Host) -> None:
        self._sequence += 1
        heapq.heappush(heap, (at, self._sequence, host, host.round))

    def _gap(self, host: _Host) -> float:
        """How long to wait for an answer before sending the host's next probe type."""
        timeout = self.rtt.timeout()
        share = timeout / len(host.plan.probes)
        if self.rtt.srtt is None or self.rtt.rttvar is None:
            return share
        return min(share, max(_MIN_GAP, self.rtt.srtt + 4 * self.rtt.rttvar))

    def _send(self, host: _Host, now: float) -> Outgoing:
        plan = host.plan
        assert plan.ctx is not None
        kind, port = plan.probes[host.next_index]
        probe = _MODULES[kind].build(plan.address, port, host.round - 1, plan.ctx)
        host.next_index += 1
        host.last_sent = now
        host.sent_at[(kind, port)] = now
        self.rate.on_send(now)
        self.sent += 1
        if host.next_index < len(plan.probes):
            self._push(self._sends, now + self._gap(host), host)
        else:
            self._push(self._deadlines, now + self.rtt.timeout(), host)
        return Outgoing(plan.address, kind, probe.packet, plan.interface)

    def _on_reply(self, address: str, kind: str, port: int, reply: Reply, hardware: bytes, now: float) -> Heard:
        host = self._active.get(address)
        if host is None or host.result is not None or kind not in host.kinds:
            return Heard.OURS
        verdict = _MODULES[kind].classify(reply)
        if not (verdict.up or reply.src == host.plan.address):  # an error sent by the target itself: alive
            host.negative = verdict
            return Heard.ANSWER
        self.answers += 1
        rtt = max(0.0, now - host.sent_at.get((kind, port), host.last_sent))
        if host.round == 1:  # Karn: a retransmitted round's answer is ambiguous
            self.rtt.update(rtt)
        self.rate.on_answer(now, rtt)
        mac = None
        if kind in ("arp", "nd"):
            mac = reply.mac.upper() if reply.mac else None
        elif host.plan.neighbour and reply.src == host.plan.address and len(hardware) == 6:
            mac = ":".join(f"{b:02X}" for b in hardware)
        ttl = 0 if kind == "arp" else verdict.ttl
        self._finish(host, DiscoveryResult(address, True, verdict.reason, ttl, rtt, mac))
        return Heard.ANSWER

    def _finish(self, host: _Host, result: DiscoveryResult) -> None:
        host.result = result
        self._active.pop(host.plan.address, None)


def _canonical(address: str) -> str:
    return str(ipaddress.ip_address(address))


def _destination(datagram: bytes) -> str:
    """The destination address of an IP datagram, canonical; "" when too short to have one."""
    if len(datagram) >= 40 and datagram[0] >> 4 == 6:
        return str(ipaddress.IPv6Address(datagram[24:40]))
    if len(datagram) >= 20:
        return "%d.%d.%d.%d" % tuple(datagram[16:20])
    return ""
