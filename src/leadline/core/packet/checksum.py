"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

Invariant: every function here works on big-endian 16-bit words and
returns a value in 0..0xFFFF ready to be packed into a header; an
odd-length input is padded with one zero byte, as RFC 1071 requires.
"""

from __future__ import annotations

import struct

__all__ = [
    "PacketError",
    "fold",
    "internet_checksum",
    "ones_complement_sum",
    "pseudo_header",
    "transport_checksum",
    "update_checksum",
]


class PacketError(ValueError):
    """A datagram is truncated or malformed; the only error parsers raise."""


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The unfolded sum of ``data`` as 16-bit big-endian words (odd length padded)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    # One big integer addition per word is the fastest pure-Python route.
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def fold(total: int) -> int:
    """Fold carries back into 16 bits (end-around carry)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The RFC 1071 checksum of ``data``, optionally seeded with a pseudo-header sum."""
    return ~fold(ones_complement_sum(data) + initial) & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    """The TCP/UDP/ICMPv6 pseudo-header: RFC 793 layout for IPv4, RFC 8200 §8.1 for IPv6."""
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, protocol, length)
    return src + dst + struct.pack("!IxxxB", length, protocol)


def transport_checksum(src: bytes, dst: bytes, protocol: int, segment: bytes | bytearray) -> int:
    """Checksum of a TCP/UDP segment or ICMPv6 message including the pseudo-header."""
    return internet_checksum(segment, ones_complement_sum(pseudo_header(src, dst, protocol, len(segment))))


def update_checksum(checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field change."""
    return ~fold((~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word) & 0xFFFF
