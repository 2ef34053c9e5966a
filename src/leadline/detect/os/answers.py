"""The answers of one OS detection round, sorted to their probes, and the values read from them.

Any datagram may arrive: from another host, truncated, malformed,
twice.  ``sort_answers`` keeps the first well-formed answer to each
probe and drops everything else, so the tests never see junk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadline.core.ipid import IpidClass
from leadline.core.osprobes import OsPlan
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ipv4 import IPv4Header, parse_ipv4

__all__ = ["Answer", "SeqSummary", "mod_diff", "option_string", "sort_answers"]


def option_string(options: bytes) -> str:
    """nmap's summary of TCP options: M<mss>, W<shift>, S, T<00|01|10|11>, N, L; "" when malformed."""
    out: list[str] = []
    i = 0
    while i < len(options):
        kind = options[i]
        if kind in (0, 1):
            out.append("L" if kind == 0 else "N")
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2 or i + options[i + 1] > len(options):
            return ""
        length = options[i + 1]
        data = options[i + 2:i + length]
        if kind == 2:
            if length < 4:
                return ""
            out.append(f"M{(data[0] << 8) + data[1]:X}")
        elif kind == 3:
            if length < 3:
                return ""
            out.append(f"W{data[0]:X}")
        elif kind == 4:
            out.append("S")
        elif kind == 8:
            if length < 10:
                return ""
            out.append("T" + ("1" if any(data[:4]) else "0") + ("1" if any(data[4:8]) else "0"))
        i += length
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Answer:
    """One captured answer, decoded as far as the tests need."""

    at: float
    ip: IPv4Header
    flags: int = 0  # TCP flags
    seq: int = 0
    ack: int = 0
    window: int = 0
    urgent: int = 0
    reserved: int = 0
    options: bytes = b""
    payload: bytes = b""
    icmp_type: int = -1
    icmp_code: int = 0
    icmp_rest: int = 0
    icmp_body: bytes = b""


@dataclass(frozen=True, slots=True)
class SeqSummary:
    """What the report says about the host's sequences (nmap's seq_info)."""

    isns: tuple[int, ...] = ()
    ipids: tuple[int, ...] = ()
    timestamps: tuple[int, ...] = ()
    index: int = 0  # TCP sequence difficulty (SP)
    ipid_class: IpidClass = IpidClass.UNKNOWN
    ts_class: str = "unknown class"  # nmap's words: "100HZ", "none returned (unsupported)", ...
    lastboot: float | None = None  # epoch seconds, from the timestamp clock


def _decode(at: float, datagram: bytes) -> Answer | None:
    try:
        ip = parse_ipv4(datagram)
    except (PacketError, ValueError):
        return None
    body = ip.payload
    if ip.frag_offset:
        return None
    if ip.protocol == 6 and len(body) >= 20:
        offset = (body[12] >> 4) * 4
        if offset < 20 or offset > len(body):
            return None
        return Answer(at, ip, flags=body[13], seq=int.from_bytes(body[4:8], "big"),
                      ack=int.from_bytes(body[8:12], "big"), window=int.from_bytes(body[14:16], "big"),
                      urgent=int.from_bytes(body[18:20], "big"), reserved=body[12] & 0x0F,
                      options=bytes(body[20:offset]), payload=bytes(body[offset:]))
    if ip.protocol == 1 and len(body) >= 8:
        return Answer(at, ip, icmp_type=body[0], icmp_code=body[1], icmp_rest=int.from_bytes(body[4:8], "big"),
                      icmp_body=bytes(body[8:]))
    return None


def _quoted_udp(plan: OsPlan, answer: Answer) -> bool:
    body = answer.icmp_body
    if len(body) < 20 or body[0] >> 4 != 4:
        return False
    hlen = (body[0] & 0x0F) * 4
    if hlen < 20 or len(body) < hlen + 8:
        return False
    sport, dport = int.from_bytes(body[hlen:hlen + 2], "big"), int.from_bytes(body[hlen + 2:hlen + 4], "big")
    return sport == plan.udp_port_base and dport == plan.closed_udp


def sort_answers(plan: OsPlan, received: Iterable[tuple[float, bytes]]) -> dict[str, Answer]:
    """The first well-formed answer from the host to each probe, by probe name."""
    answers: dict[str, Answer] = {}
    for at, datagram in received:
        answer = _decode(at, datagram)
        if answer is None or answer.ip.src != plan.target:
            continue
        name: str | None = None
        if answer.icmp_type < 0:
            name = plan.tcp_probe_for(int.from_bytes(answer.ip.payload[2:4], "big"))
        elif answer.icmp_type == 0:
            n = (answer.icmp_rest >> 16) - plan.icmp_id
            name = f"IE{n + 1}" if n in (0, 1) else None
        elif answer.icmp_type == 3 and answer.icmp_code == 3 and _quoted_udp(plan, answer):
            name = "U1"
        if name is not None and name not in answers:
            answers[name] = answer
    return answers


def mod_diff(a: int, b: int) -> int:
    return min((a - b) % (1 << 32), (b - a) % (1 << 32))
