"""UDP header (RFC 768): build and parse.

Invariant: ``None`` length and checksum are computed at build time; a
computed checksum of 0 is sent as 0xFFFF (RFC 768), since 0 means "no
checksum" over IPv4.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError, transport_checksum

__all__ = ["UDPDatagram", "build_udp", "parse_udp"]

PROTOCOL = 17
_HEADER = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UDPDatagram:
    sport: int  # source port
    dport: int  # destination port
    payload: bytes = b""  # the data
    length: int | None = None  # header + data; None: computed
    checksum: int | None = None  # None: computed over the pseudo-header


def build_udp(datagram: UDPDatagram, src: bytes, dst: bytes) -> bytes:
    length = datagram.length if datagram.length is not None else 8 + len(datagram.payload)
    raw = bytearray(_HEADER.pack(datagram.sport, datagram.dport, length, 0)) + datagram.payload
    checksum = datagram.checksum
    if checksum is None:
        checksum = transport_checksum(src, dst, PROTOCOL, raw) or 0xFFFF
    struct.pack_into("!H", raw, 6, checksum)
    return bytes(raw)


def parse_udp(data: bytes, *, quoted: bool = False) -> UDPDatagram:
    """Parse a UDP datagram; ``quoted=True`` accepts a cut-short one (inside ICMP errors)."""
    if len(data) < 8:
        raise PacketError(f"UDP header truncated: {len(data)} bytes")
    sport, dport, length, csum = _HEADER.unpack_from(data)
    if length < 8 or (length > len(data) and not quoted):
        raise PacketError(f"UDP length {length} invalid for {len(data)} bytes")
    return UDPDatagram(sport, dport, bytes(data[8:length]), length, csum)
