"""IPv6 fixed header (RFC 8200): build and parse, plus extension-header walking.

Invariant: parsers return filled-in frozen dataclasses or raise
``PacketError``; ``payload_length=None`` is computed at build time.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from functools import lru_cache

from leadline.core.packet.checksum import PacketError

__all__ = ["IPv6Header", "build_ipv6", "format_ipv6", "pack_ipv6", "parse_ipv6", "upper_layer"]

_FIXED = struct.Struct("!IHBB16s16s")  # the 40-byte header
# Extension headers that use the generic (next header, length in 8-octet units - 1) layout.
_GENERIC_EXTENSIONS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_FRAGMENT = 44


@dataclass(frozen=True, slots=True)
class IPv6Header:
    """An IPv6 header and the bytes after it (extension headers included)."""

    src: str  # source address, compressed text form
    dst: str  # destination address
    next_header: int  # 6 TCP, 17 UDP, 58 ICMPv6, or an extension header
    payload: bytes = b""  # everything after the fixed header
    hop_limit: int = 64  # the IPv6 TTL
    traffic_class: int = 0  # DSCP + ECN
    flow_label: int = 0  # 20 bits
    payload_length: int | None = None  # None: len(payload)
    version: int = 6  # always 6 on the wire


@lru_cache(maxsize=4096)
def pack_ipv6(address: str) -> bytes:
    """Text form to 16 bytes; ``PacketError`` names a bad address."""
    try:
        return ipaddress.IPv6Address(address).packed
    except ValueError:
        raise PacketError(f"not an IPv6 address: {address!r}") from None


@lru_cache(maxsize=4096)
def format_ipv6(raw: bytes) -> str:
    return ipaddress.IPv6Address(raw).compressed


def build_ipv6(header: IPv6Header) -> bytes:
    length = header.payload_length if header.payload_length is not None else len(header.payload)
    first = (6 << 28) | ((header.traffic_class & 0xFF) << 20) | (header.flow_label & 0xFFFFF)
    return (
        _FIXED.pack(first, length, header.next_header, header.hop_limit, pack_ipv6(header.src), pack_ipv6(header.dst))
        + header.payload
    )


def parse_ipv6(data: bytes, *, quoted: bool = False) -> IPv6Header:
    """Parse an IPv6 datagram; ``quoted=True`` accepts one cut short (inside ICMPv6 errors)."""
    if len(data) < 40:
        raise PacketError(f"IPv6 header truncated: {len(data)} bytes")
    first, length, nxt, hlim, src, dst = _FIXED.unpack_from(data)
    if first >> 28 != 6:
        raise PacketError(f"not IPv6: version {first >> 28}")
    if 40 + length > len(data) and not quoted:
        raise PacketError(f"IPv6 datagram truncated: payload length {length}, have {len(data) - 40}")
    return IPv6Header(
        src=format_ipv6(src),
        dst=format_ipv6(dst),
        next_header=nxt,
        payload=bytes(data[40 : 40 + length]),
        hop_limit=hlim,
        traffic_class=(first >> 20) & 0xFF,
        flow_label=first & 0xFFFFF,
        payload_length=length,
    )


def upper_layer(header: IPv6Header) -> tuple[int, bytes]:
    """Skip extension headers: (upper-layer protocol, its bytes).

    A non-first fragment has no upper-layer header to read, so it is
    reported as protocol 44 with the fragment's data.
    """
    nxt, data = header.next_header, header.payload
    for _ in range(8):  # a bound so a crafted chain cannot loop for long
        if nxt in _GENERIC_EXTENSIONS:
            if len(data) < 8:
                raise PacketError("IPv6 extension header truncated")
            size = (data[1] + 1) * 8
            if len(data) < size:
                raise PacketError("IPv6 extension header truncated")
            nxt, data = data[0], data[size:]
        elif nxt == _FRAGMENT:
            if len(data) < 8:
                raise PacketError("IPv6 fragment header truncated")
            offset = struct.unpack_from("!H", data, 2)[0] >> 3
            if offset:
                return _FRAGMENT, data[8:]
            nxt, data = data[0], data[8:]
        else:
            return nxt, data
    raise PacketError("IPv6 extension header chain too long")
