"""Traceroute probes: TTL-limited datagrams, and the reading of whatever answers them.

A trace sends the kind of probe that got an answer during the scan (a
SYN to an open or closed TCP port, a UDP datagram to a closed port, or
an ICMP echo request) with a small hop limit, and reads two kinds of
answer: a router's ICMP time-exceeded (or destination-unreachable)
quoting our probe, and the target's own answer (SYN/ACK or RST, ICMP
port unreachable, echo reply).

Invariants:

* the (TTL, attempt) of a probe is one *token* (``ttl * 4 + attempt``,
  below 256) folded through the keyed reply cookie (``core.cookie``)
  into fields every answer brings back: the TCP source port and
  sequence number (a router quotes both, the target echoes both), the
  UDP source port (and, over IPv4, the keyed IP identification), the
  ICMP echo sequence number (the identifier is keyed).  So a reply maps
  to (target, TTL, attempt) with no table of probes, and forged or
  stray packets fail the check;
* ``read`` returns a ``TraceReply`` or None and never raises, whatever
  the bytes (truncated quotes, odd ICMP types, foreign protocols); an
  ICMP message whose checksum fails is not read at all.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from leadline.core.cookie import ReplyCookie
from leadline.core.packet.checksum import PacketError, internet_checksum, transport_checksum
from leadline.core.packet.icmp import ICMPMessage, build_icmp, echo_request as echo4
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6, echo_request as echo6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, upper_layer
from leadline.core.packet.parse import QuotedHeader, pack_address, parse_datagram, parse_quoted
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, mss
from leadline.core.packet.udp import UDPDatagram, build_udp

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_TTL",
    "ReplyKind",
    "TraceMethod",
    "TraceProbes",
    "TraceReply",
    "distance_from_ttl",
    "initial_ttl_guess",
]

MAX_TTL = 30  # nmap's ceiling when the target never answers
MAX_ATTEMPTS = 4  # attempts per TTL the token has room for
_TCP, _UDP, _ICMP, _ICMP6 = 6, 17, 1, 58
_SYN, _ACK, _RST = int(TCPFlag.SYN), int(TCPFlag.ACK), int(TCPFlag.RST)
_WINDOW = 1024
_SYN_OPTIONS = (mss(1460),)
_ECHO_REPLY4, _ECHO_REPLY6 = 0, 129
_ERRORS4 = {11: "time-exceeded", 3: "unreachable"}
_ERRORS6 = {3: "time-exceeded", 1: "unreachable"}


class ReplyKind(enum.Enum):
    HOP = "hop"  # a router said the hop limit ran out (time exceeded in transit)
    TARGET = "target"  # the target itself answered: the route ends here
    UNREACHABLE = "unreachable"  # a router refused to go on: the route ends at it


@dataclass(frozen=True, slots=True)
class TraceMethod:
    """Which probe a trace sends: ``protocol`` "tcp", "udp" or "icmp", and the destination port."""

    protocol: str
    port: int | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp", "icmp"):
            raise ValueError(f"unknown trace protocol {self.protocol!r}")
        if self.protocol != "icmp" and not (self.port and 0 < self.port < 65536):
            raise ValueError(f"a {self.protocol} trace needs a port")


class TraceReply(NamedTuple):
    """An answer to one of our trace probes."""

    target: str  # the address the probe was sent to
    ttl: int  # the probe's hop limit
    attempt: int
    sender: str  # who answered: a router, or the target
    kind: ReplyKind
    reply_ttl: int  # the answer's own TTL as it arrived


def initial_ttl_guess(ttl: int) -> int:
    """The initial TTL a host most likely used, from one it arrived with: 32, 64, 128 or 255."""
    for initial in (32, 64, 128):
        if ttl <= initial:
            return initial
    return 255


def distance_from_ttl(ttl: int) -> int:
    """Hops to a host whose answer arrived with ``ttl`` (1: on our link)."""
    return initial_ttl_guess(ttl) - ttl + 1


def _token(ttl: int, attempt: int) -> int:
    return ttl * MAX_ATTEMPTS + attempt


class TraceProbes:
    """Builds trace probes from one source address and checks what comes back to it."""

    def __init__(self, source: str, secret: bytes, family: int) -> None:
        self.source = source
        self.family = family
        self._src = pack_address(source)
        self._cookie = ReplyCookie.for_scan(secret)

    # -- building --------------------------------------------------------
    def build(self, target: str, method: TraceMethod, ttl: int, attempt: int) -> bytes:
        """The whole IP datagram of one probe; ``ttl`` 1..MAX_TTL, ``attempt`` 0..MAX_ATTEMPTS-1."""
        if not (1 <= ttl <= MAX_TTL and 0 <= attempt < MAX_ATTEMPTS):
            raise ValueError(f"trace probe ttl {ttl} attempt {attempt} out of range")
        dst = pack_address(target)
        token = _token(ttl, attempt)
        cookie = self._cookie
        ip_id = 0
        if method.protocol == "tcp":
            assert method.port is not None
            values = cookie.tcp_values(self._src, dst, method.port)
            segment = TCPSegment(cookie.source_port(values, token), method.port, cookie.sequence(values, token),
                                 flags=_SYN, window=_WINDOW, options=_SYN_OPTIONS)
            payload, protocol, ip_id = build_tcp(segment, self._src, dst), _TCP, values.ip_id
        elif method.protocol == "udp":
            assert method.port is not None
            values = cookie.values(self._src, dst, _UDP, method.port)
            datagram = UDPDatagram(cookie.source_port(values, token), method.port)
            payload, protocol, ip_id = build_udp(datagram, self._src, dst), _UDP, values.ip_id
        elif self.family == 6:
            values = cookie.values(self._src, dst, _ICMP6, 0)
            message6 = echo6(values.icmp_ident, cookie.icmp_sequence(values, token))
            payload, protocol = build_icmpv6(message6, self._src, dst), _ICMP6
        else:
            values = cookie.values(self._src, dst, _ICMP, 0)
            payload, protocol = build_icmp(echo4(values.icmp_ident, cookie.icmp_sequence(values, token))), _ICMP
        if self.family == 6:
            return build_ipv6(IPv6Header(self.source, target, protocol, payload, hop_limit=ttl, flow_label=ip_id))
        return build_ipv4(IPv4Header(self.source, target, protocol, payload, ttl=ttl, ident=ip_id))

    # -- reading ---------------------------------------------------------
    def read(self, datagram: bytes) -> TraceReply | None:
        """The probe ``datagram`` answers, or None if it answers none of ours."""
        try:
            return self._read(datagram)
        except (PacketError, ValueError, IndexError, struct.error):
            return None

    def _read(self, data: bytes) -> TraceReply | None:
        packet = parse_datagram(data)
        if packet.family != self.family or pack_address(packet.dst) != self._src:
            return None
        transport = packet.transport
        if isinstance(transport, (ICMPMessage, ICMPv6Message)):
            if not _icmp_checksum_ok(packet.ip):
                return None  # a mangled type or code would change what the answer means
            return self._read_icmp(packet.src, packet.ttl, transport)
        if isinstance(transport, TCPSegment):
            if transport.flags & _ACK and transport.flags & (_SYN | _RST):
                token = self._tcp_token(packet.src, transport.sport, transport.dport, (transport.ack - 1) & 0xFFFFFFFF)
                return self._reply(packet.src, token, packet.src, ReplyKind.TARGET, packet.ttl)
            return None
        if isinstance(transport, UDPDatagram):
            token = self._udp_token(packet.src, transport.sport, transport.dport, None)
            return self._reply(packet.src, token, packet.src, ReplyKind.TARGET, packet.ttl)
        return None

    def _read_icmp(self, sender: str, ttl: int, message: ICMPMessage | ICMPv6Message) -> TraceReply | None:
        v6 = isinstance(message, ICMPv6Message)
        if message.type == (_ECHO_REPLY6 if v6 else _ECHO_REPLY4):
            values = self._cookie.values(self._src, pack_address(sender), _ICMP6 if v6 else _ICMP, 0)
            if message.ident != values.icmp_ident:
                return None
            token = self._cookie.attempt_from_icmp_sequence(values, message.sequence)
            return self._reply(sender, token, sender, ReplyKind.TARGET, ttl)
        error = (_ERRORS6 if v6 else _ERRORS4).get(message.type)
        if error is None or message.quoted is None or (error == "time-exceeded" and message.code != 0):
            return None
        quoted = parse_quoted(message.quoted)
        if pack_address(quoted.src) != self._src:
            return None
        token = self._quoted_token(quoted, message.quoted)
        target = quoted.dst
        if error == "time-exceeded":
            kind = ReplyKind.HOP
        else:
            kind = ReplyKind.TARGET if pack_address(sender) == pack_address(target) else ReplyKind.UNREACHABLE
        return self._reply(target, token, sender, kind, ttl)

    def _quoted_token(self, quoted: QuotedHeader, ip: IPv4Header | IPv6Header) -> int | None:
        if quoted.protocol == _TCP and quoted.seq is not None:
            return self._tcp_token(quoted.dst, quoted.dport, quoted.sport, quoted.seq)
        if quoted.protocol == _UDP:
            ident = ip.ident if isinstance(ip, IPv4Header) else None
            return self._udp_token(quoted.dst, quoted.dport, quoted.sport, ident)
        if quoted.protocol in (_ICMP, _ICMP6) and quoted.ident is not None and quoted.sequence is not None:
            values = self._cookie.values(self._src, pack_address(quoted.dst), quoted.protocol, 0)
            if quoted.ident != values.icmp_ident:
                return None
            return self._cookie.attempt_from_icmp_sequence(values, quoted.sequence)
        return None

    def _tcp_token(self, target: str, port: int, our_port: int, seq: int) -> int | None:
        values = self._cookie.tcp_values(self._src, pack_address(target), port)
        token = self._cookie.attempt_from_sequence(values, seq)
        if token is None or self._cookie.source_port(values, token) != our_port:
            return None
        return token

    def _udp_token(self, target: str, port: int, our_port: int, ident: int | None) -> int | None:
        values = self._cookie.values(self._src, pack_address(target), _UDP, port)
        if ident is not None and ident != values.ip_id:
            return None
        return self._cookie.attempt_from_port(values, our_port)

    @staticmethod
    def _reply(target: str, token: int | None, sender: str, kind: ReplyKind, reply_ttl: int) -> TraceReply | None:
        if token is None:
            return None
        ttl, attempt = divmod(token, MAX_ATTEMPTS)
        if not 1 <= ttl <= MAX_TTL:
            return None
        return TraceReply(target, ttl, attempt, sender, kind, reply_ttl)


def _icmp_checksum_ok(ip: IPv4Header | IPv6Header) -> bool:
    """ICMP and ICMPv6 checksums, which routers and hosts always compute in full (no offload)."""
    if isinstance(ip, IPv4Header):
        return internet_checksum(ip.payload) == 0
    _, message = upper_layer(ip)
    return transport_checksum(pack_address(ip.src), pack_address(ip.dst), _ICMP6, message) == 0
