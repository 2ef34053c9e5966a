"""ICMP for IPv4 (RFC 792, RFC 950): build and parse.

Every message is (type, code, checksum, 4-byte rest-of-header, body);
the named constructors fill ``rest`` and ``body`` for the messages a
scanner sends.  Invariant: for error messages (destination unreachable,
time exceeded, ...) ``parse_icmp`` also parses the quoted original
datagram into ``quoted``, accepting it cut short, and raises
``PacketError`` if it is not IPv4 at all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from leadline.core.packet.checksum import PacketError, internet_checksum
from leadline.core.packet.ipv4 import IPv4Header, parse_ipv4

__all__ = [
    "ICMPMessage",
    "build_icmp",
    "parse_icmp",
    "echo_request",
    "timestamp_request",
    "mask_request",
    "ECHO_REPLY",
    "DEST_UNREACHABLE",
    "ECHO_REQUEST",
    "TIME_EXCEEDED",
    "TIMESTAMP_REQUEST",
    "TIMESTAMP_REPLY",
    "MASK_REQUEST",
    "MASK_REPLY",
]

PROTOCOL = 1
ECHO_REPLY = 0
DEST_UNREACHABLE = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12
TIMESTAMP_REQUEST = 13
TIMESTAMP_REPLY = 14
MASK_REQUEST = 17
MASK_REPLY = 18
ERROR_TYPES = frozenset({DEST_UNREACHABLE, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM})
_HEADER = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class ICMPMessage:
    type: int  # message type (0 echo reply, 3 unreachable, 8 echo, 11 time exceeded, ...)
    code: int = 0  # subtype; for type 3 it says what was unreachable
    rest: int = 0  # the 32-bit rest-of-header: identifier/sequence for queries, unused/MTU for errors
    body: bytes = b""  # echo data, timestamps, mask, or the quoted original datagram
    checksum: int | None = None  # None: computed over the whole message
    quoted: IPv4Header | None = field(default=None, compare=False)  # parsed from body for error types

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def sequence(self) -> int:
        return self.rest & 0xFFFF

    @property
    def timestamps(self) -> tuple[int, int, int]:
        """Originate, receive and transmit timestamps of a timestamp request/reply."""
        if len(self.body) < 12:
            raise PacketError("ICMP timestamp message truncated")
        o, r, t = struct.unpack_from("!III", self.body)
        return (o, r, t)

    @property
    def mask(self) -> int:
        if len(self.body) < 4:
            raise PacketError("ICMP address mask message truncated")
        return int.from_bytes(self.body[:4], "big")


def _query_rest(ident: int, sequence: int) -> int:
    return ((ident & 0xFFFF) << 16) | (sequence & 0xFFFF)


def echo_request(ident: int, sequence: int, data: bytes = b"") -> ICMPMessage:
    return ICMPMessage(ECHO_REQUEST, 0, _query_rest(ident, sequence), data)


def timestamp_request(ident: int, sequence: int, originate: int = 0) -> ICMPMessage:
    """A timestamp request; ``originate`` is echoed back, so it can carry a cookie."""
    return ICMPMessage(TIMESTAMP_REQUEST, 0, _query_rest(ident, sequence), struct.pack("!III", originate, 0, 0))


def mask_request(ident: int, sequence: int) -> ICMPMessage:
    return ICMPMessage(MASK_REQUEST, 0, _query_rest(ident, sequence), b"\x00\x00\x00\x00")


def build_icmp(message: ICMPMessage) -> bytes:
    raw = bytearray(_HEADER.pack(message.type, message.code, 0, message.rest & 0xFFFFFFFF)) + message.body
    checksum = message.checksum if message.checksum is not None else internet_checksum(raw)
    struct.pack_into("!H", raw, 2, checksum)
    return bytes(raw)


def parse_icmp(data: bytes) -> ICMPMessage:
    if len(data) < 8:
        raise PacketError(f"ICMP header truncated: {len(data)} bytes")
    icmp_type, code, csum, rest = _HEADER.unpack_from(data)
    body = bytes(data[8:])
    quoted = parse_ipv4(body, quoted=True) if icmp_type in ERROR_TYPES else None
    return ICMPMessage(icmp_type, code, rest, body, csum, quoted)
