"""What a raw scan session keeps per probe and per host, the events it emits, and how
kernel-side receive drops excuse a probe's silence.

Split out of ``core.session`` so the state machine stays one screenful
of decisions; these are its records and the small rules that read them.

Receive drops: when the kernel's packet socket overflows (a flood of
unrelated traffic, a stalled reader), replies are thrown away before
the scan can read them; ``PACKET_STATISTICS`` says how many, not which.
Every probe whose current attempt left before the report may have lost
its answer (conservatively: the drop may have come just after it left),
so its silence proves nothing about the port: it is retried
on the same attempt number (the attempt is not spent), and the timeout
counts neither toward 'filtered' nor toward the loss estimate.  A port
is excused at most ``MAX_EXCUSED`` times, so a reader that drops without
end still finishes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from leadline.core.probes.base import Probe, ProbeKey, Reply, ReplyKind, Verdict
from leadline.core.timing import RttEstimator

__all__ = [
    "MAX_EXCUSED",
    "Event",
    "HostDone",
    "HostTally",
    "InFlight",
    "PortDecided",
    "Warning",
    "excusable",
    "describe_probe",
    "describe_reply",
    "excuse",
    "finish_events",
]

MAX_EXCUSED = 4  # free retries per port for replies the kernel may have dropped
_PROXY_MIN_PORTS = 200
_PROXY_OPEN_SHARE = 0.95
_TCP_FLAG_NAMES = ((0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR"))


class PortDecided(NamedTuple):
    """One port's verdict, with the conversation that led to it (for --explain).

    A named tuple, not a frozen dataclass: one is built per port, and the
    frozen dataclass's constructor cost four times as much.
    """

    address: str
    port: int
    verdict: Verdict
    rtt: float | None
    attempts: int
    exchange: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HostDone:
    """Every port of ``address`` is decided; the host's result may be written.

    ``latency`` is the shortest round-trip time among its first-attempt
    answers, None when nothing answered at once.  The shortest, not the
    smoothed: during a fast scan answers wait in our own socket while a
    batch of probes goes out, and a smoothed RTT of a host one veth away
    read milliseconds.
    """

    address: str
    latency: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Warning:  # noqa: A001 - the orchestrator's name for a per-host notice
    """Something about a host the user should know, e.g. a SYN proxy answering every port."""

    address: str
    text: str


Event = PortDecided | HostDone | Warning


@dataclass(slots=True)
class InFlight:
    """One port being probed: its attempts so far and the deadline of the last."""

    key: ProbeKey
    label: str
    attempts: int
    last_sent: float
    deadline: float
    exchange: list[str] = field(default_factory=list)
    excused: int = 0  # timeouts forgiven because of such drops (its RTT samples are ambiguous then)


@dataclass(slots=True)
class HostTally:
    """Per-host counters, dropped once the host is done."""

    rtt: RttEstimator
    expected: int | None
    in_flight: int = 0
    decided: int = 0
    open: int = 0
    fastest: float = math.inf  # shortest first-attempt RTT


def excusable(entry: InFlight, dropped_at: float) -> bool:
    """Whether a timeout may be forgiven: the kernel reported drops (at ``dropped_at``) after
    this attempt left, so its answer may be among them.  O(1): no walk over the probes in flight."""
    return dropped_at > entry.last_sent and entry.excused < MAX_EXCUSED


def excuse(entry: InFlight, now: float, explain: bool) -> None:
    """Forgive a timeout that drops may explain: the next send reuses this attempt's number."""
    entry.excused += 1
    entry.attempts -= 1
    entry.deadline = math.inf
    if explain:
        entry.exchange.append(f"no reply in {now - entry.last_sent:.2f} s, but the kernel dropped replies meanwhile")


def finish_events(address: str, host: HostTally) -> list[Event]:
    """The events that close a host: a SYN-proxy warning when nearly every port was open, then HostDone."""
    events: list[Event] = []
    if host.decided >= _PROXY_MIN_PORTS and host.open >= _PROXY_OPEN_SHARE * host.decided:
        events.append(
            Warning(
                address,
                f"{host.open} of {host.decided} ports answered as open: a SYN proxy or "
                "middlebox is probably answering for this host, so open ports are unreliable",
            )
        )
    events.append(HostDone(address, host.fastest if host.fastest < math.inf else None))
    return events


def describe_probe(probe: Probe, ip_protocol: int) -> str:
    """A short name for what a probe carries: "SYN", "FIN/PSH/URG", "UDP"."""
    packet = probe.packet
    if not packet:
        return "probe"
    if packet[0] >> 4 == 6:
        header_length, protocol = 40, packet[6] if len(packet) > 6 else ip_protocol
    else:
        header_length, protocol = (packet[0] & 0x0F) * 4, packet[9] if len(packet) > 9 else ip_protocol
    if protocol == 6 and len(packet) >= header_length + 14:
        return _flag_names(packet[header_length + 13])
    if protocol == 17:
        return "UDP"
    if protocol in (1, 58):
        return "ICMP"
    return f"protocol {protocol}"


def _flag_names(flags: int) -> str:
    names = [name for bit, name in _TCP_FLAG_NAMES if flags & bit]
    return "/".join(names) if names else "no flags"


def describe_reply(reply: Reply, rtt: float) -> str:
    detail = f"ttl {reply.ttl}, {rtt * 1000:.2f} ms"
    if reply.kind is ReplyKind.TCP and reply.tcp_flags is not None:
        return f"{_flag_names(reply.tcp_flags)} ({detail})"
    if reply.kind is ReplyKind.ICMP_UNREACHABLE:
        return f"ICMP unreachable type {reply.icmp_type} code {reply.icmp_code} from {reply.src} ({detail})"
    if reply.kind is ReplyKind.UDP:
        return f"UDP reply ({detail})"
    return f"{reply.kind.value} from {reply.src} ({detail})"
