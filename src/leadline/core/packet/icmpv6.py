"""ICMPv6 (RFC 4443) and neighbor discovery (RFC 4861): build and parse.

Invariants: the checksum covers the IPv6 pseudo-header, so building
needs the packed addresses; for error messages ``parse_icmpv6`` also
parses the quoted original datagram into ``quoted`` (cut short is
fine), and raises ``PacketError`` on anything malformed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from leadline.core.packet.checksum import PacketError, transport_checksum
from leadline.core.packet.ethernet import format_mac, pack_mac
from leadline.core.packet.ipv6 import IPv6Header, format_ipv6, pack_ipv6, parse_ipv6

__all__ = [
    "ICMPv6Message",
    "build_icmpv6",
    "parse_icmpv6",
    "echo_request",
    "neighbor_solicitation",
    "neighbor_advertisement",
    "solicited_node_address",
    "DEST_UNREACHABLE",
    "TIME_EXCEEDED",
    "ECHO_REQUEST",
    "ECHO_REPLY",
    "NEIGHBOR_SOLICITATION",
    "NEIGHBOR_ADVERTISEMENT",
]

PROTOCOL = 58
DEST_UNREACHABLE = 1
PACKET_TOO_BIG = 2
TIME_EXCEEDED = 3
PARAMETER_PROBLEM = 4
ECHO_REQUEST = 128
ECHO_REPLY = 129
NEIGHBOR_SOLICITATION = 135
NEIGHBOR_ADVERTISEMENT = 136
ERROR_TYPES = frozenset({DEST_UNREACHABLE, PACKET_TOO_BIG, TIME_EXCEEDED, PARAMETER_PROBLEM})
OPTION_SOURCE_LINK_ADDRESS = 1
OPTION_TARGET_LINK_ADDRESS = 2
# Neighbor advertisement flag bits in the rest-of-header.
NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000
_HEADER = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class ICMPv6Message:
    type: int  # 1 unreachable, 3 time exceeded, 128/129 echo, 135/136 neighbor discovery
    code: int = 0  # subtype
    rest: int = 0  # 32-bit rest-of-header: id/seq for echo, flags for NA, unused for errors
    body: bytes = b""  # echo data, ND target + options, or the quoted datagram
    checksum: int | None = None  # None: computed over the pseudo-header
    quoted: IPv6Header | None = field(default=None, compare=False)  # parsed from body for error types

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def sequence(self) -> int:
        return self.rest & 0xFFFF

    @property
    def target(self) -> str:
        """The target address of a neighbor solicitation or advertisement."""
        if len(self.body) < 16:
            raise PacketError("neighbor discovery message truncated")
        return format_ipv6(bytes(self.body[:16]))

    @property
    def link_address(self) -> str | None:
        """The first source/target link-layer address option, as a MAC string; None if there is none.

        An option cut short or of length zero raises ``PacketError``: RFC 4861
        §7.1 has such a message discarded, and reading on would take a
        truncated option for an absent one.
        """
        options = self.body[16:]
        i = 0
        while i < len(options):
            if i + 2 > len(options):
                raise PacketError("neighbor discovery option truncated")
            kind, units = options[i], options[i + 1]
            if units == 0:
                raise PacketError("neighbor discovery option of length zero")
            if i + units * 8 > len(options):
                raise PacketError(f"neighbor discovery option truncated: {units * 8} bytes, have {len(options) - i}")
            if kind in (OPTION_SOURCE_LINK_ADDRESS, OPTION_TARGET_LINK_ADDRESS):
                return format_mac(bytes(options[i + 2 : i + 8]))
            i += units * 8
        return None


def echo_request(ident: int, sequence: int, data: bytes = b"") -> ICMPv6Message:
    return ICMPv6Message(ECHO_REQUEST, 0, ((ident & 0xFFFF) << 16) | (sequence & 0xFFFF), data)


def _link_option(kind: int, mac: str) -> bytes:
    return bytes([kind, 1]) + pack_mac(mac)


def neighbor_solicitation(target: str, source_mac: str | None) -> ICMPv6Message:
    option = _link_option(OPTION_SOURCE_LINK_ADDRESS, source_mac) if source_mac else b""
    return ICMPv6Message(NEIGHBOR_SOLICITATION, 0, 0, pack_ipv6(target) + option)


def neighbor_advertisement(target: str, mac: str, flags: int = NA_SOLICITED | NA_OVERRIDE) -> ICMPv6Message:
    return ICMPv6Message(NEIGHBOR_ADVERTISEMENT, 0, flags, pack_ipv6(target) + _link_option(OPTION_TARGET_LINK_ADDRESS, mac))


def solicited_node_address(target: str) -> str:
    """ff02::1:ffXX:XXXX, where a neighbor solicitation for ``target`` is sent (RFC 4291 §2.7.1)."""
    low = pack_ipv6(target)[13:]
    return format_ipv6(bytes.fromhex("ff0200000000000000000001ff") + low)


def build_icmpv6(message: ICMPv6Message, src: bytes, dst: bytes) -> bytes:
    raw = bytearray(_HEADER.pack(message.type, message.code, 0, message.rest & 0xFFFFFFFF)) + message.body
    checksum = message.checksum if message.checksum is not None else transport_checksum(src, dst, PROTOCOL, raw)
    struct.pack_into("!H", raw, 2, checksum)
    return bytes(raw)


def parse_icmpv6(data: bytes) -> ICMPv6Message:
    if len(data) < 8:
        raise PacketError(f"ICMPv6 header truncated: {len(data)} bytes")
    icmp_type, code, csum, rest = _HEADER.unpack_from(data)
    body = bytes(data[8:])
    quoted = parse_ipv6(body, quoted=True) if icmp_type in ERROR_TYPES else None
    return ICMPv6Message(icmp_type, code, rest, body, csum, quoted)
