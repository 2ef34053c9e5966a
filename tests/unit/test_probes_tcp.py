"""Every raw TCP scan, end to end in bytes: build a probe, answer it as RFC 9293 says a
target does, match the answer, classify it; and forged or stray answers are ignored."""

from __future__ import annotations

import dataclasses

import pytest

from leadline.config import ScanType
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, ReplyKind, Verdict
from leadline.scantypes import probe_module
from leadline.core.probes.tcpflags import TcpFlagScan
from leadline.errors import UsageError
from leadline.model import PortState, Reason

US, TARGET, ROUTER = "198.18.1.2", "198.18.1.10", "198.18.1.1"
US6, TARGET6, ROUTER6 = "2001:db8::2", "2001:db8::10", "2001:db8::1"
CTX = ProbeContext(US, b"per-scan secret!")
CTX6 = ProbeContext(US6, b"per-scan secret!", family=6)
SYN, ACK, RST, FIN = TCPFlag.SYN, TCPFlag.ACK, TCPFlag.RST, TCPFlag.FIN


def ip_reply(src: str, dst: str, protocol: int, payload: bytes, ttl: int) -> bytes:
    if ":" in src:
        return build_ipv6(IPv6Header(src, dst, protocol, payload, hop_limit=ttl))
    return build_ipv4(IPv4Header(src, dst, protocol, payload, ttl=ttl))


def tcp_answer(probe: Probe, kind: str, *, window: int = 0, ttl: int = 61, seq_shift: int = 0) -> bytes:
    """What a target sends back, by RFC 9293 §3.10.7 (as Linux implements it)."""
    sent = parse_datagram(probe.packet)
    seg = sent.transport
    assert isinstance(seg, TCPSegment)
    consumed = bool(seg.flags & SYN) + bool(seg.flags & FIN)
    if kind == "syn-ack":
        reply = TCPSegment(seg.dport, seg.sport, 0x55550000, seg.seq + consumed + seq_shift, SYN | ACK, 64240)
    elif kind == "syn":
        reply = TCPSegment(seg.dport, seg.sport, 0x55550000, 0, SYN, 64240)
    elif seg.flags & ACK:  # RST to a segment with ACK: seq = its ack, no ACK flag
        reply = TCPSegment(seg.dport, seg.sport, seg.ack + seq_shift, 0, RST, window)
    else:  # RST to a segment without ACK: ack = its seq + SYN + FIN
        reply = TCPSegment(seg.dport, seg.sport, 0, (seg.seq + consumed + seq_shift) & 0xFFFFFFFF, RST | ACK, window)
    raw = build_tcp(reply, pack_address(sent.dst), pack_address(sent.src))
    return ip_reply(sent.dst, sent.src, 6, raw, ttl)


def icmp_answer(probe: Probe, icmp_type: int, code: int, *, quote: int | None = None, ttl: int = 63) -> bytes:
    """An ICMP error about ``probe``, quoting all of it (Linux) or ``quote`` bytes of it."""
    sent = parse_datagram(probe.packet)
    quoted = probe.packet if quote is None else probe.packet[:quote]
    if sent.family == 4:
        return ip_reply(ROUTER, sent.src, 1, build_icmp(ICMPMessage(icmp_type, code, 0, quoted)), ttl)
    body = build_icmpv6(ICMPv6Message(icmp_type, code, 0, quoted), pack_address(ROUTER6), pack_address(sent.src))
    return ip_reply(ROUTER6, sent.src, 58, body, ttl)


def scan(scan_type: ScanType, flags: int | None = None) -> TcpFlagScan:
    module = probe_module(scan_type, flags)
    assert isinstance(module, TcpFlagScan)
    return module


# (scan, answer, expected state, expected reason); answer "none" means every attempt timed out.
TABLE = [
    (ScanType.SYN, "syn-ack", PortState.OPEN, Reason.SYN_ACK),
    (ScanType.SYN, "syn", PortState.OPEN, Reason.SPLIT_HANDSHAKE_SYN),  # nmap: split-handshake-syn
    (ScanType.SYN, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.SYN, "none", PortState.FILTERED, Reason.NO_RESPONSE),
    (ScanType.CUSTOM, "syn-ack", PortState.OPEN, Reason.SYN_ACK),
    (ScanType.CUSTOM, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.CUSTOM, "none", PortState.FILTERED, Reason.NO_RESPONSE),
    (ScanType.FIN, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.FIN, "none", PortState.OPEN_FILTERED, Reason.NO_RESPONSE),
    (ScanType.NULL, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.NULL, "none", PortState.OPEN_FILTERED, Reason.NO_RESPONSE),
    (ScanType.XMAS, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.XMAS, "none", PortState.OPEN_FILTERED, Reason.NO_RESPONSE),
    (ScanType.MAIMON, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.MAIMON, "none", PortState.OPEN_FILTERED, Reason.NO_RESPONSE),
    (ScanType.ACK, "rst", PortState.UNFILTERED, Reason.RESET),
    (ScanType.ACK, "none", PortState.FILTERED, Reason.NO_RESPONSE),
    (ScanType.WINDOW, "rst-window", PortState.OPEN, Reason.RESET),
    (ScanType.WINDOW, "rst", PortState.CLOSED, Reason.RESET),
    (ScanType.WINDOW, "none", PortState.FILTERED, Reason.NO_RESPONSE),
]


@pytest.mark.parametrize(("scan_type", "answer", "state", "reason"), TABLE, ids=lambda v: str(getattr(v, "value", v)))
def test_classification_table(scan_type: ScanType, answer: str, state: PortState, reason: Reason) -> None:
    module = scan(scan_type)
    probe = module.build(TARGET, 443, 0, CTX)
    if answer == "none":
        assert module.classify(None) == Verdict(state, reason, None)
        return
    kind = "rst" if answer.startswith("rst") else answer
    matched = module.match(tcp_answer(probe, kind, window=1024 if answer == "rst-window" else 0, ttl=57), CTX)
    assert matched is not None, "a genuine answer must be matched"
    key, reply = matched
    assert key == ProbeKey(TARGET, 443, "tcp") and reply.src == TARGET and reply.kind is ReplyKind.TCP
    verdict = module.classify(reply)
    assert (verdict.state, verdict.reason, verdict.ttl) == (state, reason, 57)


ICMP4_CODES = [
    (0, Reason.NET_UNREACH),
    (1, Reason.HOST_UNREACH),
    (2, Reason.PROTO_UNREACH),
    (3, Reason.PORT_UNREACH),
    (9, Reason.NET_PROHIBITED),
    (10, Reason.HOST_PROHIBITED),
    (13, Reason.ADMIN_PROHIBITED),
]


@pytest.mark.parametrize("scan_type", [t for t in ScanType if t.kind.probe is not None and t is not ScanType.UDP])
@pytest.mark.parametrize(("code", "reason"), ICMP4_CODES)
def test_icmp_unreachable_means_filtered_for_every_scan(scan_type: ScanType, code: int, reason: Reason) -> None:
    module = scan(scan_type)
    probe = module.build(TARGET, 8080, 0, CTX)
    matched = module.match(icmp_answer(probe, 3, code), CTX)
    assert matched is not None
    key, reply = matched
    assert key == ProbeKey(TARGET, 8080, "tcp") and reply.src == ROUTER
    assert module.classify(reply) == Verdict(PortState.FILTERED, reason, 63)


def test_an_rfc792_short_quote_is_enough() -> None:
    module = scan(ScanType.SYN)
    probe = module.build(TARGET, 25, 0, CTX)
    matched = module.match(icmp_answer(probe, 3, 13, quote=28), CTX)
    assert matched is not None and matched[0].port == 25


def test_icmp_time_exceeded_is_filtered() -> None:
    module = scan(ScanType.SYN)
    matched = module.match(icmp_answer(module.build(TARGET, 80, 0, CTX), 11, 0), CTX)
    assert matched is not None
    assert module.classify(matched[1]).reason is Reason.TIME_EXCEEDED


@pytest.mark.parametrize("code", [4, 5, 6, 7, 11, 12])
def test_icmp_codes_nmap_ignores_are_ignored(code: int) -> None:
    module = scan(ScanType.SYN)
    assert module.match(icmp_answer(module.build(TARGET, 80, 0, CTX), 3, code), CTX) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [(0, Reason.NO_ROUTE), (1, Reason.ADMIN_PROHIBITED), (2, Reason.BEYOND_SCOPE), (3, Reason.HOST_UNREACH),
     (4, Reason.PORT_UNREACH), (6, Reason.REJECT_ROUTE)],
)
def test_ipv6_syn_scan_with_icmpv6_unreachable(code: int, reason: Reason) -> None:
    module = scan(ScanType.SYN)
    probe = module.build(TARGET6, 22, 0, CTX6)
    matched = module.match(icmp_answer(probe, 1, code), CTX6)
    assert matched is not None and matched[0] == ProbeKey(TARGET6, 22, "tcp") and matched[1].family == 6
    assert module.classify(matched[1]) == Verdict(PortState.FILTERED, reason, 63)


@pytest.mark.parametrize(("answer", "state"), [("syn-ack", PortState.OPEN), ("rst", PortState.CLOSED)])
def test_ipv6_syn_scan_tcp_answers(answer: str, state: PortState) -> None:
    module = scan(ScanType.SYN)
    matched = module.match(tcp_answer(module.build(TARGET6, 22, 0, CTX6), answer, ttl=64), CTX6)
    assert matched is not None and module.classify(matched[1]).state is state


def test_probe_looks_like_nmaps() -> None:
    probe = scan(ScanType.SYN).build(TARGET, 80, 0, dataclasses.replace(CTX, ttl=47))
    sent = parse_datagram(probe.packet)
    seg = sent.transport
    assert isinstance(seg, TCPSegment) and isinstance(sent.ip, IPv4Header)
    assert (seg.flags, seg.window, seg.dport, [o.value for o in seg.options], sent.ttl) == (SYN, 1024, 80, [1460], 47)
    assert 32768 <= seg.sport <= 61000
    fin = parse_datagram(scan(ScanType.FIN).build(TARGET, 80, 0, CTX).packet).transport
    assert isinstance(fin, TCPSegment) and fin.options == () and fin.flags == FIN
    xmas = parse_datagram(scan(ScanType.XMAS).build(TARGET, 80, 0, CTX).packet).transport
    assert isinstance(xmas, TCPSegment) and xmas.flags == FIN | TCPFlag.PSH | TCPFlag.URG


@pytest.mark.parametrize("attempt", [0, 1, 2, 9, 255])
def test_reply_says_which_attempt_it_answers(attempt: int) -> None:
    module = scan(ScanType.SYN)
    probes = [module.build(TARGET, 80, a, CTX) for a in range(3)]
    assert len({p.packet for p in probes}) == 3, "retransmissions differ"
    matched = module.match(tcp_answer(module.build(TARGET, 80, attempt, CTX), "syn-ack"), CTX)
    assert matched is not None and matched[1].attempt == attempt


FORGERIES = {
    "another scan's secret": lambda m, p: m.match(tcp_answer(p, "syn-ack"), dataclasses.replace(CTX, secret=b"other")),
    "ack off by one": lambda m, p: m.match(tcp_answer(p, "syn-ack", seq_shift=1), CTX),
    "rst with a wrong ack": lambda m, p: m.match(tcp_answer(p, "rst", seq_shift=1 << 20), CTX),
    "not addressed to us": lambda m, p: m.match(tcp_answer(p, "syn-ack"), dataclasses.replace(CTX, source_address="198.18.1.3")),
    "truncated": lambda m, p: m.match(tcp_answer(p, "syn-ack")[:30], CTX),
    "empty": lambda m, p: m.match(b"", CTX),
    "our own probe looped back": lambda m, p: m.match(p.packet, CTX),
}


@pytest.mark.parametrize("forgery", FORGERIES, ids=str)
@pytest.mark.parametrize("scan_type", [ScanType.SYN, ScanType.ACK, ScanType.NULL, ScanType.MAIMON])
def test_forged_or_stray_replies_are_ignored(forgery: str, scan_type: ScanType) -> None:
    module = scan(scan_type)
    assert FORGERIES[forgery](module, module.build(TARGET, 80, 0, CTX)) is None


def test_rst_reply_from_another_port_is_ignored() -> None:
    module = scan(ScanType.SYN)
    probe = module.build(TARGET, 80, 0, CTX)
    other = module.build(TARGET, 81, 0, CTX)
    # An answer to port 81's probe rewritten to come from port 80 fails port 80's cookie.
    raw = bytearray(tcp_answer(other, "rst"))
    raw[20:22] = (80).to_bytes(2, "big")
    assert module.match(bytes(raw), CTX) is None
    assert module.match(tcp_answer(probe, "rst"), CTX) is not None


def test_icmp_error_quoting_someone_elses_probe_is_ignored() -> None:
    module = scan(ScanType.SYN)
    foreign = module.build(TARGET, 80, 0, dataclasses.replace(CTX, secret=b"someone else"))
    assert module.match(icmp_answer(foreign, 3, 13), CTX) is None


def test_scanflags_change_the_probe_not_the_reading() -> None:
    custom = scan(ScanType.CUSTOM, SYN | FIN)
    seg = parse_datagram(custom.build(TARGET, 80, 0, CTX).packet).transport
    assert isinstance(seg, TCPSegment) and seg.flags == SYN | FIN
    matched = custom.match(tcp_answer(custom.build(TARGET, 80, 0, CTX), "syn-ack"), CTX)
    assert matched is not None and custom.classify(matched[1]).state is PortState.OPEN
    fin_with_ack = scan(ScanType.FIN, FIN | ACK)
    matched = fin_with_ack.match(tcp_answer(fin_with_ack.build(TARGET, 80, 0, CTX), "rst"), CTX)
    assert matched is not None and fin_with_ack.classify(matched[1]).state is PortState.CLOSED
    by_context = scan(ScanType.SYN)
    seg = parse_datagram(by_context.build(TARGET, 80, 0, dataclasses.replace(CTX, tcp_flags=ACK)).packet).transport
    assert isinstance(seg, TCPSegment) and seg.flags == ACK


def test_fixed_source_port_is_used_and_still_validated() -> None:
    ctx = dataclasses.replace(CTX, source_port=53)
    module = scan(ScanType.SYN)
    probe = module.build(TARGET, 80, 3, ctx)
    seg = parse_datagram(probe.packet).transport
    assert isinstance(seg, TCPSegment) and seg.sport == 53
    matched = module.match(tcp_answer(probe, "syn-ack"), ctx)
    assert matched is not None and matched[1].attempt == 3
    assert module.match(tcp_answer(probe, "syn-ack", seq_shift=5), ctx) is None


def test_registry_refuses_scans_without_a_packet_module() -> None:
    with pytest.raises(UsageError, match="connect"):
        probe_module(ScanType.CONNECT, None)
    assert probe_module(ScanType.UDP, None).name == "udp"


def test_registry_refuses_out_of_range_scanflags() -> None:
    with pytest.raises(UsageError, match="300"):
        probe_module(ScanType.SYN, 300)


def test_registry_names_are_nmaps_scaninfo_types() -> None:
    names = {t: probe_module(t, None).name for t in ScanType if t.kind.probe is not None and t is not ScanType.UDP}
    assert names == {
        ScanType.SYN: "syn", ScanType.FIN: "fin", ScanType.NULL: "null", ScanType.XMAS: "xmas",
        ScanType.ACK: "ack", ScanType.WINDOW: "window", ScanType.MAIMON: "maimon", ScanType.CUSTOM: "syn",
    }


def test_probe_and_reply_keys_agree_however_the_address_is_spelled() -> None:
    module = scan(ScanType.SYN)
    probe = module.build("2001:DB8:0:0::10", 22, 0, CTX6)
    matched = module.match(tcp_answer(probe, "rst"), CTX6)
    assert matched is not None and matched[0] == probe.key == ProbeKey(TARGET6, 22, "tcp")
