"""A minimal IPv4 SYN-scan module for testing the session and engines on their own.

It keeps the ProbeModule contract with nothing but ``struct`` and
``hashlib``: the sequence number and source port are a keyed hash of
(address, port), so a reply is matched by recomputing them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from typing import ClassVar

from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, Reply, ReplyKind, Verdict
from leadline.model import PortState, Reason

_ICMP_REASONS = {
    0: Reason.NET_UNREACH,
    1: Reason.HOST_UNREACH,
    2: Reason.PROTO_UNREACH,
    3: Reason.PORT_UNREACH,
    9: Reason.NET_PROHIBITED,
    10: Reason.HOST_PROHIBITED,
    13: Reason.ADMIN_PROHIBITED,
}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def cookie(secret: bytes, address: str, port: int) -> tuple[int, int]:
    """(source port, sequence number) for a probe to address:port."""
    digest = hashlib.blake2b(f"{address}|{port}".encode(), key=secret, digest_size=8).digest()
    source_port = 33000 + int.from_bytes(digest[:2], "big") % 28000
    return source_port, int.from_bytes(digest[4:8], "big")


class FixtureSynScan:
    name: ClassVar[str] = "syn"
    ip_protocol: ClassVar[int] = 6

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        src = ipaddress.IPv4Address(ctx.source_address).packed
        dst = ipaddress.IPv4Address(address).packed
        sport, seq = cookie(ctx.secret, address, port)
        options = b"\x02\x04\x05\xb4"
        segment = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 6 << 4, 0x02, 1024, 0, 0) + options
        pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(segment))
        segment = segment[:16] + struct.pack("!H", _checksum(pseudo + segment)) + segment[18:]
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 4242 + attempt, 0, ctx.ttl, 6, 0, src, dst)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return Probe(ProbeKey(address, port), header + segment, attempt)

    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        if len(datagram) < 20 or datagram[0] >> 4 != 4:
            return None
        ihl = (datagram[0] & 0x0F) * 4
        ttl, protocol = datagram[8], datagram[9]
        src = str(ipaddress.IPv4Address(datagram[12:16]))
        body = datagram[ihl:]
        if protocol == 6 and len(body) >= 20:
            sport, dport, _, ack = struct.unpack("!HHII", body[:12])
            expected_port, seq = cookie(ctx.secret, src, sport)
            if dport != expected_port or ack != (seq + 1) & 0xFFFFFFFF:
                return None
            return ProbeKey(src, sport), Reply(ReplyKind.TCP, src, ttl, tcp_flags=body[13], tcp_window=struct.unpack("!H", body[14:16])[0])
        if protocol == 1 and len(body) >= 8 + 20 + 8 and body[0] == 3:
            quoted = body[8:]
            qihl = (quoted[0] & 0x0F) * 4
            target = str(ipaddress.IPv4Address(quoted[16:20]))
            sport, dport, seq = struct.unpack("!HHI", quoted[qihl : qihl + 8])
            if (sport, seq) != cookie(ctx.secret, target, dport):
                return None
            return ProbeKey(target, dport), Reply(ReplyKind.ICMP_UNREACHABLE, src, ttl, icmp_type=3, icmp_code=body[1])
        return None

    def classify(self, reply: Reply | None) -> Verdict:
        if reply is None:
            return Verdict(PortState.FILTERED, Reason.NO_RESPONSE)
        if reply.kind is ReplyKind.TCP and reply.tcp_flags is not None:
            if reply.tcp_flags & 0x12 == 0x12:
                return Verdict(PortState.OPEN, Reason.SYN_ACK, reply.ttl)
            if reply.tcp_flags & 0x04:
                return Verdict(PortState.CLOSED, Reason.RESET, reply.ttl)
        if reply.kind is ReplyKind.ICMP_UNREACHABLE and reply.icmp_code in _ICMP_REASONS:
            return Verdict(PortState.FILTERED, _ICMP_REASONS[reply.icmp_code], reply.ttl)
        return Verdict(PortState.FILTERED, Reason.NO_RESPONSE)
