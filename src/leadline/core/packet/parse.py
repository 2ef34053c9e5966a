"""Whole-datagram dissection: IP header, then the upper layer, in one call.

This is what scan modules call on the receive path.  Invariant:
``parse_datagram`` and ``parse_quoted`` return frozen dataclasses or
raise ``PacketError``; nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError
from leadline.core.packet.icmp import ICMPMessage, parse_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, parse_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, pack_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import IPv6Header, pack_ipv6, parse_ipv6, upper_layer
from leadline.core.packet.tcp import TCPSegment, parse_tcp
from leadline.core.packet.udp import UDPDatagram, parse_udp

__all__ = ["Datagram", "QuotedHeader", "pack_address", "parse_datagram", "parse_quoted"]

Transport = TCPSegment | UDPDatagram | ICMPMessage | ICMPv6Message


@dataclass(frozen=True, slots=True)
class Datagram:
    """An IP datagram and its decoded upper layer."""

    ip: IPv4Header | IPv6Header
    protocol: int  # upper-layer protocol, after any IPv6 extension headers
    transport: Transport | None  # None: a protocol we do not decode, or a non-first fragment

    @property
    def src(self) -> str:
        return self.ip.src

    @property
    def dst(self) -> str:
        return self.ip.dst

    @property
    def ttl(self) -> int:
        return self.ip.ttl if isinstance(self.ip, IPv4Header) else self.ip.hop_limit

    @property
    def family(self) -> int:
        return 4 if isinstance(self.ip, IPv4Header) else 6


@dataclass(frozen=True, slots=True)
class QuotedHeader:
    """The part of our original datagram an ICMP error quotes: enough to know which probe it was.

    RFC 792 promises only the first 8 bytes after the IP header: both
    ports and the TCP sequence number, or an ICMP query's id and sequence.
    """

    src: str  # our address, as the target saw it
    dst: str  # the probed address
    protocol: int  # 6, 17, 1 or 58
    sport: int = 0  # TCP/UDP source port (0 for ICMP)
    dport: int = 0  # TCP/UDP destination port (0 for ICMP)
    seq: int | None = None  # TCP sequence number
    icmp_type: int | None = None  # quoted ICMP query's type
    ident: int | None = None  # quoted ICMP query's identifier
    sequence: int | None = None  # quoted ICMP query's sequence


def pack_address(address: str) -> bytes:
    """4 or 16 bytes for a textual address; ``PacketError`` names a bad one."""
    return pack_ipv6(address) if ":" in address else pack_ipv4(address)


def _transport(protocol: int, data: bytes) -> Transport | None:
    if protocol == 6:
        return parse_tcp(data)
    if protocol == 17:
        return parse_udp(data)
    if protocol == 1:
        return parse_icmp(data)
    if protocol == 58:
        return parse_icmpv6(data)
    return None


def parse_datagram(data: bytes) -> Datagram:
    """Parse an IPv4 or IPv6 datagram (chosen by the version nibble) and its upper layer."""
    if not data:
        raise PacketError("empty datagram")
    version = data[0] >> 4
    if version == 4:
        ip4 = parse_ipv4(data)
        if ip4.frag_offset:
            return Datagram(ip4, ip4.protocol, None)
        return Datagram(ip4, ip4.protocol, _transport(ip4.protocol, ip4.payload))
    if version == 6:
        ip6 = parse_ipv6(data)
        protocol, rest = upper_layer(ip6)
        return Datagram(ip6, protocol, _transport(protocol, rest))
    raise PacketError(f"unknown IP version {version}")


def parse_quoted(ip: IPv4Header | IPv6Header) -> QuotedHeader:
    """Decode the ports / sequence / ICMP id of the datagram an ICMP error quotes."""
    if isinstance(ip, IPv4Header):
        protocol, rest = ip.protocol, ip.payload
    else:
        protocol, rest = upper_layer(ip)
    if len(rest) < 8:
        raise PacketError(f"quoted datagram carries {len(rest)} bytes of its header, need 8")
    if protocol == 6:
        sport, dport, seq = struct.unpack_from("!HHI", rest)
        return QuotedHeader(ip.src, ip.dst, protocol, sport, dport, seq=seq)
    if protocol == 17:
        sport, dport = struct.unpack_from("!HH", rest)
        return QuotedHeader(ip.src, ip.dst, protocol, sport, dport)
    if protocol in (1, 58):
        icmp_type, _code, _csum, ident, sequence = struct.unpack_from("!BBHHH", rest)
        return QuotedHeader(ip.src, ip.dst, protocol, icmp_type=icmp_type, ident=ident, sequence=sequence)
    return QuotedHeader(ip.src, ip.dst, protocol)
