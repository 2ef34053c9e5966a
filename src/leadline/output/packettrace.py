"""``--packet-trace`` lines in nmap's layout, one per datagram sent or received.

    SENT (0.0360s) TCP 198.18.1.2:49152 > 198.18.1.10:22 S ttl=64 id=4242 iplen=44  seq=1 win=1024 <mss 1460>
    RCVD (0.0362s) TCP 198.18.1.10:22 > 198.18.1.2:49152 SA ttl=64 id=0 iplen=44  seq=9 win=64240 <mss 1460>
    RCVD (0.0400s) ICMP [198.18.1.40 > 198.18.1.2 Port 993 unreachable (type=3/code=3) ] IP [ttl=64 id=7 iplen=72 ]
    SENT (0.0012s) ARP who-has 198.18.1.10 tell 198.18.1.2
    RCVD (0.0015s) ARP reply 198.18.1.10 is-at 02:4C:11:01:00:0A

TCP flags are spelled as nmap spells them (F S R P A U E C, in that
order).  A datagram too short to parse is shown by its protocol and
length rather than dropped, because a trace is for debugging.
"""

from __future__ import annotations

import ipaddress
import struct

from leadline.core.packet.arp import REPLY as ARP_REPLY
from leadline.core.packet.arp import parse_arp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import parse_ethernet

__all__ = ["arp_trace_line", "format_packet", "trace_line"]

_FLAG_LETTERS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "A"), (0x20, "U"), (0x40, "E"), (0x80, "C"))
_UNREACHABLE = {
    0: "Network unreachable",
    1: "Host unreachable",
    2: "Protocol unreachable",
    3: "Port unreachable",
    4: "Fragmentation needed",
    9: "Network administratively prohibited",
    10: "Host administratively prohibited",
    13: "Communication administratively prohibited",
}
_ICMP_NAMES = {0: "Echo reply", 8: "Echo request", 11: "TTL exceeded", 13: "Timestamp request", 14: "Timestamp reply"}


def trace_line(direction: str, elapsed: float, datagram: bytes) -> str:
    """``direction`` is "SENT" or "RCVD"; ``elapsed`` is seconds since the scan began."""
    return f"{direction} ({elapsed:.4f}s) {format_packet(datagram)}"


def arp_trace_line(direction: str, elapsed: float, frame: bytes) -> str:
    """nmap's trace line for an ARP frame: "ARP who-has A tell B" / "ARP reply A is-at M"."""
    head = f"{direction} ({elapsed:.4f}s) ARP"
    try:
        arp = parse_arp(parse_ethernet(frame).payload)
    except PacketError:
        return f"{head} ({len(frame)} bytes)"
    if arp.operation == ARP_REPLY:
        return f"{head} reply {arp.sender_ip} is-at {arp.sender_mac.upper()}"
    return f"{head} who-has {arp.target_ip} tell {arp.sender_ip}"


def format_packet(datagram: bytes) -> str:
    """One IPv4 or IPv6 datagram, summarised as nmap's packet trace does."""
    if len(datagram) >= 40 and datagram[0] >> 4 == 6:
        src = str(ipaddress.IPv6Address(datagram[8:24]))
        dst = str(ipaddress.IPv6Address(datagram[24:40]))
        ip_info = f"hopl={datagram[7]} flow={int.from_bytes(datagram[1:4], 'big') & 0xFFFFF:x} payloadlen={struct.unpack('!H', datagram[4:6])[0]}"
        return _transport(datagram[6], src, dst, datagram[40:], ip_info, datagram, icmp_type_v6=True)
    if len(datagram) >= 20 and datagram[0] >> 4 == 4:
        ihl = (datagram[0] & 0x0F) * 4
        total, ident = struct.unpack("!HH", datagram[2:6])
        src = str(ipaddress.IPv4Address(datagram[12:16]))
        dst = str(ipaddress.IPv4Address(datagram[16:20]))
        ip_info = f"ttl={datagram[8]} id={ident} iplen={total}"
        return _transport(datagram[9], src, dst, datagram[ihl:], ip_info, datagram, icmp_type_v6=False)
    return f"unknown packet ({len(datagram)} bytes)"


def _transport(protocol: int, src: str, dst: str, body: bytes, ip_info: str, datagram: bytes, *, icmp_type_v6: bool) -> str:
    if protocol == 6 and len(body) >= 20:
        sport, dport, seq, _ack, offset, flags, window = struct.unpack("!HHIIBBH", body[:16])
        letters = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
        options = _tcp_options(body[20 : (offset >> 4) * 4])
        tail = f" {options}" if options else ""
        return f"TCP {_join(src, sport)} > {_join(dst, dport)} {letters} {ip_info}  seq={seq} win={window}{tail}"
    if protocol == 17 and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        return f"UDP {_join(src, sport)} > {_join(dst, dport)} {ip_info}"
    if protocol in (1, 58) and len(body) >= 4:
        kind, code = body[0], body[1]
        return f"ICMP{'v6' if icmp_type_v6 else ''} [{src} > {dst} {_icmp_text(kind, code, body, icmp_type_v6)} (type={kind}/code={code}) ] IP [{ip_info} ]"
    return f"IP {src} > {dst} proto={protocol} {ip_info}"


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _icmp_text(kind: int, code: int, body: bytes, v6: bool) -> str:
    if v6:
        return "Destination unreachable" if kind == 1 else f"ICMPv6 type {kind}"
    if kind != 3:
        return _ICMP_NAMES.get(kind, f"ICMP type {kind}")
    if code == 3:
        quoted = body[8:]
        if len(quoted) >= 20:
            qihl = (quoted[0] & 0x0F) * 4
            if len(quoted) >= qihl + 4 and quoted[9] in (6, 17):
                return f"Port {struct.unpack('!H', quoted[qihl + 2 : qihl + 4])[0]} unreachable"
    return _UNREACHABLE.get(code, f"Destination unreachable code {code}")


def _tcp_options(raw: bytes) -> str:
    parts: list[str] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            parts.append("eol")
            break
        if kind == 1:
            parts.append("nop")
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2:
            break
        length = raw[i + 1]
        data = raw[i + 2 : i + length]
        if kind == 2 and len(data) == 2:
            parts.append(f"mss {struct.unpack('!H', data)[0]}")
        elif kind == 3 and len(data) == 1:
            parts.append(f"wscale {data[0]}")
        elif kind == 4:
            parts.append("sackOK")
        elif kind == 8 and len(data) == 8:
            tsval, tsecr = struct.unpack("!II", data)
            parts.append(f"timestamp {tsval} {tsecr}")
        else:
            parts.append(f"opt{kind}")
        i += length
    return f"<{','.join(parts)}>" if parts else ""
