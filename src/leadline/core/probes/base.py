"""The contract every raw-packet scan module keeps.

A scan type is one small module that knows three things: how to build
its probe, how to recognise a reply to one of its probes (and ignore
everything else), and how to turn a reply, or the lack of one, into a
port state and a reason.  None of it does I/O, so every module is tested
from byte literals and the engine never needs to know which scan runs.

Replies are matched without a table of outstanding probes: a keyed
cookie is folded into what the target must echo back (TCP sequence
number and source port; for ICMP errors, the quoted original header),
so ``match`` can recover which (address, port) a reply answers, and a
stray or forged packet fails the check and is dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from leadline.model import PortState, Reason


class ReplyKind(enum.Enum):
    TCP = "tcp"
    UDP = "udp"
    ICMP_UNREACHABLE = "icmp-unreachable"  # IPv4 type 3 / ICMPv6 type 1
    ICMP_TIME_EXCEEDED = "icmp-time-exceeded"
    ICMP_ECHO_REPLY = "icmp-echo-reply"
    ICMP_TIMESTAMP_REPLY = "icmp-timestamp-reply"
    ICMP_MASK_REPLY = "icmp-mask-reply"
    ARP_REPLY = "arp-reply"
    ND_ADVERT = "nd-advert"


class ProbeKey(NamedTuple):
    """Which probe a reply answers: the probe's destination and port (0 for portless probes).

    Named tuples, here and for ``Reply``: one of each is made per reply on
    the receive path and the key is hashed on every lookup; a frozen
    dataclass costs several times as much for both.
    """

    address: str
    port: int
    protocol: str = "tcp"


class Reply(NamedTuple):
    """The facts about a received packet that classification needs."""

    kind: ReplyKind
    src: str  # who sent the reply (for ICMP errors: the router or host that sent the error)
    ttl: int
    tcp_flags: int | None = None
    tcp_window: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    mac: str | None = None  # for ARP / ND replies
    attempt: int | None = None  # which retransmission it answers, when the reply reveals it (mod 256)
    family: int = 4  # 4 or 6: ICMP codes mean different things in ICMPv6
    third_party: bool = False  # an ICMP error sent by someone other than the probed host (a router, a firewall)


class Verdict(NamedTuple):
    """A port's state and why; one per port, so as cheap to make as ``Reply``."""

    state: PortState
    reason: Reason
    ttl: int | None = None


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Per-scan constants a module needs to build and check probes.

    ``secret`` keys the reply cookie; it is drawn at random per scan so
    that replies to another scan, or forged ones, fail validation.
    """

    source_address: str
    secret: bytes
    family: int = 4
    ttl: int = 64
    tcp_flags: int | None = None  # --scanflags override
    source_port: int | None = None  # -g / --source-port: fixed source port
    source_mac: str | None = None  # our interface's MAC: ARP and ND probes carry it


class Probe(NamedTuple):
    """One datagram to send.  A named tuple: one is built per probe sent."""

    key: ProbeKey
    packet: bytes  # the whole IP datagram (IPv4 or IPv6 header included)
    attempt: int = 0
    extra: tuple[bytes, ...] = ()  # more datagrams sent with it (UDP: a port's other payloads)


class ProbeModule(Protocol):
    """One scan technique (``-sS``, ``-sF``, ...)."""

    name: ClassVar[str]  # nmap's XML scaninfo type: "syn", "fin", ...
    ip_protocol: ClassVar[int]  # what the probe carries: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        """The probe's bytes; ``attempt`` lets retransmissions differ (so replies say which one they answer)."""
        ...

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        """Parse a received IP datagram; return the probe it answers, or None if it answers none of ours."""
        ...

    def classify(self, reply: Reply | None) -> Verdict:
        """The state a reply implies; ``None`` means every attempt went unanswered."""
        ...
