"""Privileged host discovery probes (-PE -PP -PM -PS -PA -PU -PR, and ND for IPv6).

Each probe kind is a small object shaped like a ``ProbeModule``: build a
probe, recognise a reply to it (ignoring everything else, never
raising), classify it.  What they classify into is a ``HostVerdict``
(is the host up, and nmap's reason) rather than a port state.  Portless
probes use ``ProbeKey.port = 0``.

Validation: ICMP queries carry a keyed identifier and a sequence number
that encodes the attempt (see ``core/cookie.py``); TCP pings reuse the
TCP scans' sequence-number cookie; UDP can only carry the cookie in its
source port, so its check is weaker; ARP and ND replies are matched on
the address asked about and addressed to us.

``ArpPing`` is the one module that builds and matches whole Ethernet
frames (``link_layer = True``); every other module deals in IP datagrams.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import ClassVar, Protocol

from leadline.core.cookie import CookieValues, ReplyCookie
from leadline.core.packet import icmp, icmpv6
from leadline.core.packet.arp import REPLY as ARP_REPLY
from leadline.core.packet.arp import REQUEST as ARP_REQUEST
from leadline.core.packet.arp import ARPPacket, build_arp, parse_arp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import BROADCAST, ETHERTYPE_ARP, EthernetFrame, build_ethernet, parse_ethernet
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, pack_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram, parse_quoted
from leadline.core.packet.tcp import TCPFlag
from leadline.core.packet.template import IcmpQueryTemplate
from leadline.core.packet.udp import UDPDatagram, build_udp
from leadline.core.probes.ack import AckScan
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, Reply, ReplyKind
from leadline.core.probes.syn import SynScan
from leadline.core.probes.tcpflags import (
    ICMP4_UNREACHABLE_REASONS,
    ICMP6_UNREACHABLE_REASONS,
    TcpFlagScan,
    canonical_address,
)
from leadline.model import Reason

__all__ = [
    "HostVerdict",
    "DiscoveryModule",
    "IcmpEchoPing",
    "IcmpTimestampPing",
    "IcmpMaskPing",
    "TcpSynPing",
    "TcpAckPing",
    "UdpPing",
    "ArpPing",
    "NeighborPing",
    "nd_multicast_mac",
    "DEFAULT_UDP_PING_PORT",
]

DEFAULT_UDP_PING_PORT = 40125  # nmap's -PU default
_ZERO_MAC = "00:00:00:00:00:00"
_IPV4_ICMP_QUERY = struct.Struct("!BxHxxHBB2x4s4sBBxxHH")  # vihl, total, frag, ttl, proto, src, dst, type, code, ident, seq


@dataclass(frozen=True, slots=True)
class HostVerdict:
    up: bool
    reason: Reason
    ttl: int | None = None


class DiscoveryModule(Protocol):
    name: ClassVar[str]  # nmap's -P letter spelled out: "echo", "syn", "arp", ...
    ip_protocol: ClassVar[int]  # 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6; 0 for ARP
    capture_filter: ClassVar[str]
    link_layer: ClassVar[bool]  # True: build/match deal in Ethernet frames, not IP datagrams

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe: ...

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None: ...

    def classify(self, reply: Reply | None) -> HostVerdict: ...


def _unreachable_reason(reply: Reply) -> Reason:
    if reply.kind is ReplyKind.ICMP_TIME_EXCEEDED:
        return Reason.TIME_EXCEEDED
    table = ICMP6_UNREACHABLE_REASONS if reply.family == 6 else ICMP4_UNREACHABLE_REASONS
    return table.get(reply.icmp_code or 0, Reason.HOST_UNREACH)


def _error_kind(family: int, icmp_type: int) -> ReplyKind | None:
    if family == 4:
        return {3: ReplyKind.ICMP_UNREACHABLE, 11: ReplyKind.ICMP_TIME_EXCEEDED}.get(icmp_type)
    return {1: ReplyKind.ICMP_UNREACHABLE, 3: ReplyKind.ICMP_TIME_EXCEEDED}.get(icmp_type)


def _ip_datagram(ctx: ProbeContext, address: str, protocol: int, payload: bytes, ident: int, ttl: int | None = None) -> bytes:
    if ":" in address:
        return build_ipv6(IPv6Header(ctx.source_address, address, protocol, payload, hop_limit=ttl or ctx.ttl))
    return build_ipv4(IPv4Header(ctx.source_address, address, protocol, payload, ttl=ttl or ctx.ttl, ident=ident))


# --- ICMP queries -----------------------------------------------------------------


class _IcmpQueryPing:
    """Shared by echo, timestamp and address-mask pings: an ICMP query and its reply."""

    ip_protocol: ClassVar[int] = 1
    capture_filter: ClassVar[str] = "icmp or icmp6"
    link_layer: ClassVar[bool] = False
    request_type: ClassVar[int]
    reply_type: ClassVar[int]
    reply_kind: ClassVar[ReplyKind]
    reply_reason: ClassVar[Reason]
    request_type6: ClassVar[int | None] = None  # the ICMPv6 counterpart, if there is one
    reply_type6: ClassVar[int | None] = None
    checks_body: ClassVar[bool] = False  # the reply's body must echo the cookie too (``_echo_ok``)

    _scan: tuple[ProbeContext, bytes, ReplyCookie] | None = None
    _stamp: tuple[ProbeContext, IcmpQueryTemplate] | None = None
    carries_originate: ClassVar[bool] = False  # the originate timestamp holds the cookie (timestamp requests)

    def _per_scan(self, ctx: ProbeContext) -> tuple[bytes, ReplyCookie]:
        """Our packed address and the cookie, worked out once per context rather than per packet."""
        scan = self._scan
        if scan is None or scan[0] is not ctx:
            scan = self._scan = (ctx, pack_address(ctx.source_address), ReplyCookie.for_scan(ctx.secret, None))
        return scan[1], scan[2]

    def _values(self, ctx: ProbeContext, address: str) -> tuple[ReplyCookie, CookieValues]:
        src, cookie = self._per_scan(ctx)
        protocol = 58 if ":" in address else 1
        return cookie, cookie.values(src, pack_address(address), protocol, self.request_type)

    def _message(self, ident: int, sequence: int, originate: int) -> icmp.ICMPMessage:
        return icmp.echo_request(ident, sequence)

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        cookie, values = self._values(ctx, address)
        sequence = cookie.icmp_sequence(values, attempt)
        if ":" in address:
            if self.request_type6 is None:
                raise PacketError(f"{self.request_type} ICMP query has no IPv6 form: {address}")
            message6 = icmpv6.echo_request(values.icmp_ident, sequence)
            payload = icmpv6.build_icmpv6(message6, pack_address(ctx.source_address), pack_address(address))
            packet = _ip_datagram(ctx, address, 58, payload, 0)
        else:
            stamp = self._stamp
            if stamp is None or stamp[0] is not ctx:
                zero = icmp.build_icmp(self._message(0, 0, 0))
                stamp = self._stamp = (ctx, IcmpQueryTemplate(ctx.source_address, zero, ttl=ctx.ttl,
                                                              originate=self.carries_originate))
            originate = cookie.sequence(values, attempt) if self.carries_originate else 0
            packet = stamp[1].render(pack_address(address), values.ip_id, values.icmp_ident, sequence, originate)
            return Probe(ProbeKey(address, 0, "icmp"), packet, attempt)  # a dotted quad is its own canonical form
        return Probe(ProbeKey(canonical_address(address), 0, "icmp"), packet, attempt)

    def _echo_ok(self, message: icmp.ICMPMessage, values: CookieValues, attempt: int) -> bool:
        return True

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            if len(datagram) >= 28 and datagram[0] == 0x45 and datagram[9] == 1 and datagram[20] == self.reply_type:
                return self._match_ipv4_reply(datagram, ctx)
            return self._match(datagram, ctx)
        except (PacketError, ValueError):
            return None

    def _match_ipv4_reply(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        """``_match`` for the reply to our query in an option-less IPv4 datagram, from fixed offsets:
        the answer to nearly every probe of a sweep, read without building the parsed objects."""
        _, total, fragment, ttl, _, src, dst, _, code, ident, sequence = _IPV4_ICMP_QUERY.unpack_from(datagram)
        if total > len(datagram) or total < 28 or fragment & 0x1FFF or code != 0:
            return None
        our_address, cookie = self._per_scan(ctx)
        if dst != our_address:
            return None
        values = cookie.values(our_address, src, 1, self.request_type)
        attempt = cookie.attempt_from_icmp_sequence(values, sequence)
        if ident != values.icmp_ident or attempt is None:
            return None
        if self.checks_body and not self._echo_ok(icmp.parse_icmp(datagram[20:total]), values, attempt):
            return None
        address = socket.inet_ntoa(src)
        reply = Reply(self.reply_kind, address, ttl, icmp_type=self.reply_type, icmp_code=0, attempt=attempt, family=4)
        return ProbeKey(address, 0, "icmp"), reply

    def _match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        parsed = parse_datagram(datagram)
        if parsed.dst != canonical_address(ctx.source_address):
            return None
        message = parsed.transport
        if not isinstance(message, (icmp.ICMPMessage, icmpv6.ICMPv6Message)):
            return None
        wanted = self.reply_type if parsed.family == 4 else self.reply_type6
        if message.type == wanted and message.code == 0:
            cookie, values = self._values(ctx, parsed.src)
            attempt = cookie.attempt_from_icmp_sequence(values, message.sequence)
            if message.ident != values.icmp_ident or attempt is None:
                return None
            if isinstance(message, icmp.ICMPMessage) and not self._echo_ok(message, values, attempt):
                return None
            reply = Reply(self.reply_kind, parsed.src, parsed.ttl, icmp_type=message.type, icmp_code=0, attempt=attempt, family=parsed.family)
            return ProbeKey(parsed.src, 0, "icmp"), reply
        kind = _error_kind(parsed.family, message.type)
        if kind is None or message.quoted is None:
            return None
        quoted = parse_quoted(message.quoted)
        asked = self.request_type if parsed.family == 4 else self.request_type6
        if quoted.icmp_type != asked or canonical_address(quoted.src) != canonical_address(ctx.source_address):
            return None
        cookie, values = self._values(ctx, quoted.dst)
        attempt = cookie.attempt_from_icmp_sequence(values, quoted.sequence or 0)
        if quoted.ident != values.icmp_ident or attempt is None:
            return None
        reply = Reply(kind, parsed.src, parsed.ttl, icmp_type=message.type, icmp_code=message.code, attempt=attempt, family=parsed.family)
        return ProbeKey(canonical_address(quoted.dst), 0, "icmp"), reply

    def classify(self, reply: Reply | None) -> HostVerdict:
        if reply is None:
            return HostVerdict(False, Reason.NO_RESPONSE)
        if reply.kind is self.reply_kind:
            return HostVerdict(True, self.reply_reason, reply.ttl)
        return HostVerdict(False, _unreachable_reason(reply), reply.ttl)


class IcmpEchoPing(_IcmpQueryPing):
    """-PE: ICMP echo request (ICMPv6 echo for IPv6 targets)."""

    name: ClassVar[str] = "echo"
    request_type = icmp.ECHO_REQUEST
    reply_type = icmp.ECHO_REPLY
    reply_kind = ReplyKind.ICMP_ECHO_REPLY
    reply_reason = Reason.ECHO_REPLY
    request_type6 = icmpv6.ECHO_REQUEST
    reply_type6 = icmpv6.ECHO_REPLY


class IcmpTimestampPing(_IcmpQueryPing):
    """-PP: ICMP timestamp request; the originate timestamp carries the sequence cookie too."""

    name: ClassVar[str] = "timestamp"
    request_type = icmp.TIMESTAMP_REQUEST
    reply_type = icmp.TIMESTAMP_REPLY
    reply_kind = ReplyKind.ICMP_TIMESTAMP_REPLY
    reply_reason = Reason.TIMESTAMP_REPLY
    checks_body = True
    carries_originate = True

    def _message(self, ident: int, sequence: int, originate: int) -> icmp.ICMPMessage:
        return icmp.timestamp_request(ident, sequence, originate)

    def _echo_ok(self, message: icmp.ICMPMessage, values: CookieValues, attempt: int) -> bool:
        return message.timestamps[0] == ReplyCookie.sequence(values, attempt)


class IcmpMaskPing(_IcmpQueryPing):
    """-PM: ICMP address mask request (RFC 950)."""

    name: ClassVar[str] = "netmask"
    request_type = icmp.MASK_REQUEST
    reply_type = icmp.MASK_REPLY
    reply_kind = ReplyKind.ICMP_MASK_REPLY
    reply_reason = Reason.MASK_REPLY

    def _message(self, ident: int, sequence: int, originate: int) -> icmp.ICMPMessage:
        return icmp.mask_request(ident, sequence)


# --- TCP pings ----------------------------------------------------------------------


class _TcpPing:
    """-PS / -PA: a TCP scan probe whose any TCP answer (SYN/ACK or RST) means "up"."""

    ip_protocol: ClassVar[int] = 6
    capture_filter: ClassVar[str] = "tcp or icmp or icmp6"
    link_layer: ClassVar[bool] = False
    name: ClassVar[str]

    def __init__(self, scan: TcpFlagScan) -> None:
        self._scan = scan

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        return self._scan.build(address, port, attempt, ctx)

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        return self._scan.match(datagram, ctx)

    def classify(self, reply: Reply | None) -> HostVerdict:
        if reply is None:
            return HostVerdict(False, Reason.NO_RESPONSE)
        if reply.kind is ReplyKind.TCP:
            flags = reply.tcp_flags or 0
            return HostVerdict(True, Reason.RESET if flags & TCPFlag.RST else Reason.SYN_ACK, reply.ttl)
        return HostVerdict(False, _unreachable_reason(reply), reply.ttl)


class TcpSynPing(_TcpPing):
    """-PS<ports>."""

    name: ClassVar[str] = "syn"

    def __init__(self) -> None:
        super().__init__(SynScan())


class TcpAckPing(_TcpPing):
    """-PA<ports>."""

    name: ClassVar[str] = "ack"

    def __init__(self) -> None:
        super().__init__(AckScan())


# --- UDP ping ------------------------------------------------------------------------


class UdpPing:
    """-PU<ports>: any UDP answer or an ICMP port unreachable (only the host itself sends one) means "up"."""

    name: ClassVar[str] = "udp"
    ip_protocol: ClassVar[int] = 17
    capture_filter: ClassVar[str] = "udp or icmp or icmp6"
    link_layer: ClassVar[bool] = False

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        cookie = ReplyCookie.for_scan(ctx.secret, ctx.source_port)
        src, dst = pack_address(ctx.source_address), pack_address(address)
        values = cookie.values(src, dst, 17, port)
        segment = build_udp(UDPDatagram(cookie.source_port(values, attempt), port), src, dst)
        return Probe(ProbeKey(canonical_address(address), port, "udp"), _ip_datagram(ctx, address, 17, segment, values.ip_id), attempt)

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            return self._match(datagram, ctx)
        except (PacketError, ValueError):
            return None

    def _match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        parsed = parse_datagram(datagram)
        if parsed.dst != canonical_address(ctx.source_address):
            return None
        cookie = ReplyCookie.for_scan(ctx.secret, ctx.source_port)
        src = pack_address(ctx.source_address)
        transport = parsed.transport
        if isinstance(transport, UDPDatagram):
            values = cookie.values(src, pack_address(parsed.src), 17, transport.sport)
            if not cookie.port_is_ours(values, transport.dport):
                return None
            attempt = cookie.attempt_from_port(values, transport.dport)
            reply = Reply(ReplyKind.UDP, parsed.src, parsed.ttl, attempt=attempt, family=parsed.family)
            return ProbeKey(parsed.src, transport.sport, "udp"), reply
        if isinstance(transport, (icmp.ICMPMessage, icmpv6.ICMPv6Message)) and transport.quoted is not None:
            kind = _error_kind(parsed.family, transport.type)
            if kind is None:
                return None
            quoted = parse_quoted(transport.quoted)
            if quoted.protocol != 17 or pack_address(quoted.src) != src:
                return None
            values = cookie.values(src, pack_address(quoted.dst), 17, quoted.dport)
            if not cookie.port_is_ours(values, quoted.sport):
                return None
            attempt = cookie.attempt_from_port(values, quoted.sport)
            reply = Reply(kind, parsed.src, parsed.ttl, icmp_type=transport.type, icmp_code=transport.code, attempt=attempt, family=parsed.family)
            return ProbeKey(canonical_address(quoted.dst), quoted.dport, "udp"), reply
        return None

    def classify(self, reply: Reply | None) -> HostVerdict:
        if reply is None:
            return HostVerdict(False, Reason.NO_RESPONSE)
        if reply.kind is ReplyKind.UDP:
            return HostVerdict(True, Reason.UDP_RESPONSE, reply.ttl)
        reason = _unreachable_reason(reply)
        return HostVerdict(reason is Reason.PORT_UNREACH, reason, reply.ttl)


# --- link-layer neighbours ------------------------------------------------------------


def _require_mac(ctx: ProbeContext) -> str:
    if not ctx.source_mac:
        raise PacketError("ARP and neighbor discovery probes need ProbeContext.source_mac")
    return ctx.source_mac


class ArpPing:
    """-PR: a broadcast ARP request; the answer's sender address says who is up (and its MAC)."""

    name: ClassVar[str] = "arp"
    ip_protocol: ClassVar[int] = 0
    capture_filter: ClassVar[str] = "arp"
    link_layer: ClassVar[bool] = True

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        mac = _require_mac(ctx)
        request = ARPPacket(ARP_REQUEST, mac, ctx.source_address, _ZERO_MAC, address)
        frame = build_ethernet(EthernetFrame(BROADCAST, mac, ETHERTYPE_ARP, build_arp(request)))
        return Probe(ProbeKey(address, 0, "arp"), frame, attempt)

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            frame = parse_ethernet(datagram)
            if frame.ethertype != ETHERTYPE_ARP:
                return None
            answer = parse_arp(frame.payload)
        except PacketError:
            return None
        if answer.operation != ARP_REPLY or answer.target_ip != ctx.source_address:
            return None
        reply = Reply(ReplyKind.ARP_REPLY, answer.sender_ip, 0, mac=answer.sender_mac, family=4)
        return ProbeKey(answer.sender_ip, 0, "arp"), reply

    def classify(self, reply: Reply | None) -> HostVerdict:
        if reply is None:
            return HostVerdict(False, Reason.NO_RESPONSE)
        return HostVerdict(True, Reason.ARP_RESPONSE, None)


def nd_multicast_mac(address: str) -> str:
    """The Ethernet address a neighbor solicitation for ``address`` goes to: 33:33 + the last 32 bits of its solicited-node group."""
    low = pack_ipv6(address)[12:]
    return "33:33:ff:" + ":".join(f"{b:02x}" for b in low[1:])


class NeighborPing:
    """IPv6 ARP: a neighbor solicitation to the target's solicited-node group (RFC 4861 §7.2.2)."""

    name: ClassVar[str] = "nd"
    ip_protocol: ClassVar[int] = 58
    capture_filter: ClassVar[str] = "icmp6"
    link_layer: ClassVar[bool] = False

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        group = icmpv6.solicited_node_address(address)
        message = icmpv6.neighbor_solicitation(address, _require_mac(ctx))
        payload = icmpv6.build_icmpv6(message, pack_address(ctx.source_address), pack_ipv6(group))
        # RFC 4861 §7.1.1: ND messages must carry hop limit 255 so receivers know they are on-link.
        packet = build_ipv6(IPv6Header(ctx.source_address, group, 58, payload, hop_limit=255))
        return Probe(ProbeKey(canonical_address(address), 0, "nd"), packet, attempt)

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            parsed = parse_datagram(datagram)
            message = parsed.transport
            if (
                not isinstance(message, icmpv6.ICMPv6Message)
                or message.type != icmpv6.NEIGHBOR_ADVERTISEMENT
                or parsed.ttl != 255
                or not message.rest & icmpv6.NA_SOLICITED
                or parsed.dst != canonical_address(ctx.source_address)
            ):
                return None
            target = message.target
            reply = Reply(ReplyKind.ND_ADVERT, parsed.src, parsed.ttl, mac=message.link_address, family=6)
            return ProbeKey(target, 0, "nd"), reply
        except (PacketError, ValueError):
            return None

    def classify(self, reply: Reply | None) -> HostVerdict:
        if reply is None:
            return HostVerdict(False, Reason.NO_RESPONSE)
        return HostVerdict(True, Reason.ND_RESPONSE, None)
