"""Prebuilt TCP probe templates, patched per target on the hot path.

Everything that is the same for every probe of a scan (our address,
flags, window, options, TTL) is built once.  Per probe we copy the
bytes, ``struct.pack_into`` the few fields that differ (destination,
ports, sequence/ack numbers, IP ID) and update both checksums
incrementally (RFC 1624): the template is summed with those fields at
zero, so the new checksum is ~(template sum + new fields' words).

Invariant: ``render`` gives byte-for-byte what ``build_ipv4``/
``build_ipv6`` + ``build_tcp`` would build with the same fields
(tests check this for random fields).
"""

from __future__ import annotations

import struct

from leadline.core.packet.checksum import fold, ones_complement_sum, pseudo_header
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, pack_ipv6
from leadline.core.packet.tcp import PROTOCOL, TCPOption, TCPSegment, build_tcp

__all__ = ["IcmpQueryTemplate", "TcpProbeStamp", "TcpProbeTemplate"]

_PORTS_SEQ_ACK = struct.Struct("!HHII")
_U16 = struct.Struct("!H")
_ADDR6 = struct.Struct("!8H")


class TcpProbeTemplate:
    """A TCP probe for one scan, ready to be stamped out for any target."""

    __slots__ = ("family", "_base", "_ip_sum", "_tcp_sum", "_tcp_at", "_dst_at")

    def __init__(
        self,
        src: str,
        *,
        flags: int,
        window: int = 1024,
        options: tuple[TCPOption, ...] = (),
        ttl: int = 64,
        ip_flags: int = 0,
    ) -> None:
        self.family = 6 if ":" in src else 4
        zero_dst = bytes(4 if self.family == 4 else 16)
        src_raw = pack_ipv4(src) if self.family == 4 else pack_ipv6(src)
        segment = build_tcp(TCPSegment(0, 0, 0, 0, flags, window, options=options, checksum=0), src_raw, zero_dst)
        # Sum of the segment and pseudo-header with every per-probe field at zero.
        self._tcp_sum = fold(ones_complement_sum(segment) + ones_complement_sum(pseudo_header(src_raw, zero_dst, PROTOCOL, len(segment))))
        if self.family == 4:
            zero_ip = "0.0.0.0"
            header = build_ipv4(IPv4Header(src, zero_ip, PROTOCOL, segment, ttl=ttl, flags=ip_flags, checksum=0))
            self._ip_sum = fold(ones_complement_sum(header[:20]))
            self._tcp_at, self._dst_at = 20, 16
        else:
            header = build_ipv6(IPv6Header(src, "::", PROTOCOL, segment, hop_limit=ttl))
            self._ip_sum = 0
            self._tcp_at, self._dst_at = 40, 24
        self._base = header

    def for_destination(self, dst: bytes) -> "TcpProbeStamp":
        """This template with the destination ``dst`` already in place: a host's probes differ in ports and numbers only."""
        buf = bytearray(self._base)
        buf[self._dst_at : self._dst_at + len(dst)] = dst
        if self.family == 4:
            d = int.from_bytes(dst, "big")
            dst_sum = (d >> 16) + (d & 0xFFFF)
            return TcpProbeStamp(bytes(buf), self._ip_sum + dst_sum, self._tcp_sum + dst_sum, self._tcp_at, True)
        return TcpProbeStamp(bytes(buf), 0, self._tcp_sum + sum(_ADDR6.unpack(dst)), self._tcp_at, False)

    def render(self, dst: bytes, sport: int, dport: int, seq: int, ack: int = 0, ip_id: int = 0) -> bytes:
        """The probe to packed address ``dst``; ``ip_id`` is ignored for IPv6."""
        buf = bytearray(self._base)
        tcp_at = self._tcp_at
        buf[self._dst_at : self._dst_at + len(dst)] = dst
        _PORTS_SEQ_ACK.pack_into(buf, tcp_at, sport, dport, seq, ack)
        if self.family == 4:
            d = int.from_bytes(dst, "big")
            dst_sum = (d >> 16) + (d & 0xFFFF)
            _U16.pack_into(buf, 4, ip_id)
            s = self._ip_sum + dst_sum + ip_id
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            _U16.pack_into(buf, 10, ~s & 0xFFFF)
        else:
            dst_sum = sum(_ADDR6.unpack(dst))
        s = self._tcp_sum + dst_sum + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _U16.pack_into(buf, tcp_at + 16, ~s & 0xFFFF)
        return bytes(buf)


class TcpProbeStamp:
    """A template bound to one destination (``TcpProbeTemplate.for_destination``).

    Invariant: ``render(sport, dport, seq, ack, ip_id)`` equals the
    template's ``render(dst, sport, dport, seq, ack, ip_id)``.
    """

    __slots__ = ("_base", "_ip_sum", "_tcp_sum", "_tcp_at", "_ipv4")

    def __init__(self, base: bytes, ip_sum: int, tcp_sum: int, tcp_at: int, ipv4: bool) -> None:
        self._base, self._ip_sum, self._tcp_sum, self._tcp_at, self._ipv4 = base, ip_sum, tcp_sum, tcp_at, ipv4

    def render(self, sport: int, dport: int, seq: int, ack: int = 0, ip_id: int = 0) -> bytes:
        buf = bytearray(self._base)
        tcp_at = self._tcp_at
        _PORTS_SEQ_ACK.pack_into(buf, tcp_at, sport, dport, seq, ack)
        if self._ipv4:
            _U16.pack_into(buf, 4, ip_id)
            s = self._ip_sum + ip_id
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            _U16.pack_into(buf, 10, ~s & 0xFFFF)
        s = self._tcp_sum + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _U16.pack_into(buf, tcp_at + 16, ~s & 0xFFFF)
        return bytes(buf)


_IDENT_SEQ = struct.Struct("!HH")
_U32 = struct.Struct("!I")


class IcmpQueryTemplate:
    """An IPv4 ICMP query (echo, timestamp, mask request) for one scan, stamped out per target.

    Built once from ``message`` (the query with identifier, sequence and
    originate at zero) through the full builders; per probe the
    destination, IP ID, identifier, sequence and, for a timestamp request,
    the originate timestamp are patched and both checksums updated
    incrementally.  Invariant: ``render`` gives byte-for-byte what
    ``build_icmp`` + the IPv4 header builder give with the same fields.
    """

    __slots__ = ("_base", "_ip_sum", "_icmp_sum", "_originate")

    def __init__(self, src: str, message: bytes, *, ttl: int = 64, originate: bool = False) -> None:
        body = bytearray(message)
        body[2:4] = b"\x00\x00"
        header = build_ipv4(IPv4Header(src, "0.0.0.0", 1, bytes(body), ttl=ttl, flags=0, checksum=0))
        self._ip_sum = fold(ones_complement_sum(header[:20]))
        self._icmp_sum = fold(ones_complement_sum(bytes(body)))
        self._base = bytes(header[:20]) + bytes(body)
        self._originate = originate

    def render(self, dst: bytes, ip_id: int, ident: int, sequence: int, originate: int = 0) -> bytes:
        """The query to packed IPv4 address ``dst``; ``originate`` only counts for timestamp requests."""
        buf = bytearray(self._base)
        buf[16:20] = dst
        d = int.from_bytes(dst, "big")
        _U16.pack_into(buf, 4, ip_id)
        s = self._ip_sum + (d >> 16) + (d & 0xFFFF) + ip_id
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _U16.pack_into(buf, 10, ~s & 0xFFFF)
        _IDENT_SEQ.pack_into(buf, 24, ident, sequence)
        s = self._icmp_sum + ident + sequence
        if self._originate:
            _U32.pack_into(buf, 28, originate)
            s += (originate >> 16) + (originate & 0xFFFF)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _U16.pack_into(buf, 22, ~s & 0xFFFF)
        return bytes(buf)
