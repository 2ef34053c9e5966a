"""IPv4 header (RFC 791): build and parse.

Invariant: ``parse_ipv4`` either returns a header whose fields are all
filled in from the wire, or raises ``PacketError``; it never lets an
``IndexError`` or ``struct.error`` out.  Fields left ``None`` when
building are computed by ``build_ipv4`` (lengths, checksum).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError, internet_checksum

__all__ = ["IPv4Header", "build_ipv4", "format_ipv4", "pack_ipv4", "parse_ipv4", "DF", "MF"]

DF = 0x2  # "don't fragment" flag bit
MF = 0x1  # "more fragments" flag bit

_FIXED = struct.Struct("!BBHHHBBH4s4s")  # the 20-byte fixed part


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """An IPv4 header and the bytes it carries."""

    src: str  # source address, dotted quad
    dst: str  # destination address, dotted quad
    protocol: int  # upper-layer protocol: 1 ICMP, 6 TCP, 17 UDP
    payload: bytes = b""  # the carried segment (may be short when quoted in an ICMP error)
    ttl: int = 64  # hop limit
    ident: int = 0  # identification, for reassembly; scanners vary it
    tos: int = 0  # DSCP (6 bits) + ECN (2 bits)
    flags: int = 0  # 3 bits: reserved, DF, MF
    frag_offset: int = 0  # in 8-byte units
    options: bytes = b""  # raw options, padded to a multiple of 4 at build time
    ihl: int | None = None  # header length in 32-bit words; None: from options
    total_length: int | None = None  # header + payload; None: computed
    checksum: int | None = None  # header checksum; None: computed
    version: int = 4  # always 4 on the wire; kept so parsed headers show it

    @property
    def header_length(self) -> int:
        return (self.ihl if self.ihl is not None else 5 + (len(self.options) + 3) // 4) * 4


def pack_ipv4(address: str) -> bytes:
    """Dotted quad to 4 bytes; ``PacketError`` names a bad address.

    ``inet_pton`` is as strict as ``ipaddress`` (four decimal parts, no
    leading zeros) and thirty times cheaper: a sweep packs every address
    it probes, too many for a cache.
    """
    try:
        return socket.inet_pton(socket.AF_INET, address)
    except (OSError, TypeError, ValueError):
        raise PacketError(f"not an IPv4 address: {address!r}") from None


def format_ipv4(raw: bytes) -> str:
    """4 bytes to a dotted quad (cheaper than ipaddress on the receive path)."""
    return "%d.%d.%d.%d" % (raw[0], raw[1], raw[2], raw[3])


def build_ipv4(header: IPv4Header) -> bytes:
    """The header followed by its payload, with computed fields filled in."""
    options = header.options + b"\x00" * (-len(header.options) % 4)
    ihl = header.ihl if header.ihl is not None else 5 + len(options) // 4
    total = header.total_length if header.total_length is not None else ihl * 4 + len(header.payload)
    fixed = bytearray(
        _FIXED.pack(
            (4 << 4) | (ihl & 0xF),
            header.tos,
            total,
            header.ident,
            ((header.flags & 0x7) << 13) | (header.frag_offset & 0x1FFF),
            header.ttl,
            header.protocol,
            0,
            pack_ipv4(header.src),
            pack_ipv4(header.dst),
        )
    )
    fixed += options
    checksum = header.checksum if header.checksum is not None else internet_checksum(fixed)
    struct.pack_into("!H", fixed, 10, checksum)
    return bytes(fixed) + header.payload


def parse_ipv4(data: bytes, *, quoted: bool = False) -> IPv4Header:
    """Parse an IPv4 datagram.

    ``quoted=True`` accepts a datagram cut short, as ICMP errors quote
    only the start of the original: the payload is then whatever is there.
    """
    if len(data) < 20:
        raise PacketError(f"IPv4 header truncated: {len(data)} bytes")
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _FIXED.unpack_from(data)
    if vihl >> 4 != 4:
        raise PacketError(f"not IPv4: version {vihl >> 4}")
    ihl = vihl & 0xF
    hlen = ihl * 4
    if ihl < 5 or len(data) < hlen:
        raise PacketError(f"IPv4 header length {hlen} invalid for {len(data)} bytes")
    if total < hlen:
        raise PacketError(f"IPv4 total length {total} shorter than header {hlen}")
    if total > len(data) and not quoted:
        raise PacketError(f"IPv4 datagram truncated: total length {total}, have {len(data)}")
    return IPv4Header(
        src=format_ipv4(src),
        dst=format_ipv4(dst),
        protocol=proto,
        payload=bytes(data[hlen:total]),
        ttl=ttl,
        ident=ident,
        tos=tos,
        flags=frag >> 13,
        frag_offset=frag & 0x1FFF,
        options=bytes(data[20:hlen]),
        ihl=ihl,
        total_length=total,
        checksum=csum,
    )
