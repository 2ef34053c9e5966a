"""TCP header (RFC 9293) with options: build and parse.

Invariants: ``build_tcp`` fills ``None`` fields (data offset, checksum
over the v4 or v6 pseudo-header); ``parse_tcp`` returns a filled-in
frozen dataclass or raises ``PacketError``.  Option parsing is
tolerant: unknown kinds are kept as raw (kind, data) pairs and a
malformed length ends the list with the rest kept raw, because a reply
with odd options is still a reply.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError, transport_checksum

__all__ = [
    "TCPFlag",
    "TCPOption",
    "TCPSegment",
    "build_tcp",
    "parse_tcp",
    "mss",
    "nop",
    "eol",
    "sack_permitted",
    "timestamps",
    "window_scale",
    "format_flags",
]

PROTOCOL = 6
_FIXED = struct.Struct("!HHIIBBHHH")  # the 20-byte fixed part


class TCPFlag(enum.IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class OptionKind(enum.IntEnum):
    EOL = 0
    NOP = 1
    MSS = 2
    WINDOW_SCALE = 3
    SACK_PERMITTED = 4
    SACK = 5
    TIMESTAMPS = 8


@dataclass(frozen=True, slots=True)
class TCPOption:
    kind: int  # option kind; see OptionKind
    data: bytes = b""  # the value bytes, without kind and length

    def encode(self) -> bytes:
        if self.kind in (OptionKind.EOL, OptionKind.NOP):
            return bytes([self.kind])
        return bytes([self.kind, len(self.data) + 2]) + self.data

    @property
    def value(self) -> int | tuple[int, int] | None:
        """The decoded value of the well-known options (MSS, window scale, timestamps)."""
        if self.kind == OptionKind.MSS and len(self.data) == 2:
            return int.from_bytes(self.data, "big")
        if self.kind == OptionKind.WINDOW_SCALE and len(self.data) == 1:
            return self.data[0]
        if self.kind == OptionKind.TIMESTAMPS and len(self.data) == 8:
            tsval, tsecr = struct.unpack("!II", self.data)
            return (tsval, tsecr)
        return None


def mss(size: int) -> TCPOption:
    return TCPOption(OptionKind.MSS, struct.pack("!H", size))


def window_scale(shift: int) -> TCPOption:
    return TCPOption(OptionKind.WINDOW_SCALE, bytes([shift]))


def sack_permitted() -> TCPOption:
    return TCPOption(OptionKind.SACK_PERMITTED)


def timestamps(tsval: int, tsecr: int = 0) -> TCPOption:
    return TCPOption(OptionKind.TIMESTAMPS, struct.pack("!II", tsval, tsecr))


def nop() -> TCPOption:
    return TCPOption(OptionKind.NOP)


def eol() -> TCPOption:
    return TCPOption(OptionKind.EOL)


@dataclass(frozen=True, slots=True)
class TCPSegment:
    """A TCP header and its payload."""

    sport: int  # source port
    dport: int  # destination port
    seq: int = 0  # sequence number; scans fold the reply cookie in here
    ack: int = 0  # acknowledgement number (meaningful with ACK set)
    flags: int = TCPFlag.SYN  # the 8 flag bits (CWR..FIN)
    window: int = 1024  # receive window; nmap's probes say 1024
    urgent: int = 0  # urgent pointer
    options: tuple[TCPOption, ...] = ()  # encoded in order, padded with EOL to 32 bits
    payload: bytes = b""  # data after the header
    data_offset: int | None = None  # header length in 32-bit words; None: from options
    checksum: int | None = None  # None: computed over the pseudo-header
    reserved: int = 0  # the 4 reserved bits (NS/AE included)

    def has(self, flag: int) -> bool:
        return self.flags & flag == flag


def encode_options(options: tuple[TCPOption, ...]) -> bytes:
    raw = b"".join(o.encode() for o in options)
    return raw + b"\x00" * (-len(raw) % 4)


def build_tcp(segment: TCPSegment, src: bytes, dst: bytes) -> bytes:
    """The segment's bytes; ``src``/``dst`` are packed addresses (4 or 16 bytes) for the pseudo-header."""
    options = encode_options(segment.options)
    offset = segment.data_offset if segment.data_offset is not None else 5 + len(options) // 4
    raw = bytearray(
        _FIXED.pack(
            segment.sport,
            segment.dport,
            segment.seq & 0xFFFFFFFF,
            segment.ack & 0xFFFFFFFF,
            ((offset & 0xF) << 4) | (segment.reserved & 0xF),
            segment.flags & 0xFF,
            segment.window,
            0,
            segment.urgent,
        )
    )
    raw += options
    raw += segment.payload
    checksum = segment.checksum if segment.checksum is not None else transport_checksum(src, dst, PROTOCOL, raw)
    struct.pack_into("!H", raw, 16, checksum)
    return bytes(raw)


def parse_options(raw: bytes) -> tuple[TCPOption, ...]:
    options: list[TCPOption] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OptionKind.EOL:
            options.append(TCPOption(kind))
            break
        if kind == OptionKind.NOP:
            options.append(TCPOption(kind))
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            options.append(TCPOption(kind, bytes(raw[i + 1 :])))  # malformed: keep the rest raw
            break
        length = raw[i + 1]
        options.append(TCPOption(kind, bytes(raw[i + 2 : i + length])))
        i += length
    return tuple(options)


def parse_tcp(data: bytes, *, with_options: bool = True) -> TCPSegment:
    """Parse a TCP segment; ``with_options=False`` skips option decoding on the hot receive path."""
    if len(data) < 20:
        raise PacketError(f"TCP header truncated: {len(data)} bytes")
    sport, dport, seq, ack, off, flags, window, csum, urgent = _FIXED.unpack_from(data)
    hlen = (off >> 4) * 4
    if hlen < 20 or hlen > len(data):
        raise PacketError(f"TCP data offset {hlen} invalid for {len(data)} bytes")
    return TCPSegment(
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        urgent=urgent,
        options=parse_options(data[20:hlen]) if with_options else (),
        payload=bytes(data[hlen:]),
        data_offset=off >> 4,
        checksum=csum,
        reserved=off & 0xF,
    )


_FLAG_LETTERS = (("S", TCPFlag.SYN), ("A", TCPFlag.ACK), ("F", TCPFlag.FIN), ("R", TCPFlag.RST),
                 ("P", TCPFlag.PSH), ("U", TCPFlag.URG), ("E", TCPFlag.ECE), ("C", TCPFlag.CWR))


def format_flags(flags: int) -> str:
    """Flags as nmap's --packet-trace letters, e.g. "SA" for SYN/ACK."""
    return "".join(letter for letter, bit in _FLAG_LETTERS if flags & bit)
