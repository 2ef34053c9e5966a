"""The fixed-offset reading of IPv4/TCP replies agrees with the full parser, packet for packet.

``TcpFlagScan.match`` reads an option-less IPv4 TCP reply straight from its
offsets; ``TcpFlagScan._match`` parses the whole datagram.  Whatever the
bytes, both must accept the same packets and return the same key and reply.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.config import ScanType
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.parse import pack_address
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, mss
from leadline.core.probes.base import ProbeContext, ProbeKey, Reply
from leadline.scantypes import probe_module
from leadline.core.probes.tcpflags import _FULL_PARSE, TcpFlagScan
from tests.unit.test_probes_tcp import tcp_answer

US, TARGET, OTHER = "198.18.1.2", "198.18.1.10", "198.18.1.99"
CTX = ProbeContext(US, b"fast-path secret")
SYN, ACK, RST, FIN = int(TCPFlag.SYN), int(TCPFlag.ACK), int(TCPFlag.RST), int(TCPFlag.FIN)


def full_parse(module: TcpFlagScan, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
    try:
        return module._match(datagram, ctx)
    except (PacketError, ValueError):
        return None


def segment_reply(flags: int, sport: int, dport: int, seq: int, ack: int, *, options: tuple = (), src: str = TARGET,
                  dst: str = US, ip_options: bytes = b"", frag_offset: int = 0, payload: bytes = b"") -> bytes:
    segment = build_tcp(TCPSegment(sport, dport, seq, ack, flags, 512, options=options, payload=payload),
                        pack_address(src), pack_address(dst))
    return build_ipv4(IPv4Header(src, dst, 6, segment, ttl=60, options=ip_options, frag_offset=frag_offset))


def genuine(module: TcpFlagScan, port: int, kind: str, attempt: int = 0) -> bytes:
    return tcp_answer(module.build(TARGET, port, attempt, CTX), kind)


def table() -> list[tuple[str, TcpFlagScan, bytes]]:
    syn = probe_module(ScanType.SYN, None)
    ack = probe_module(ScanType.ACK, None)
    fin = probe_module(ScanType.FIN, None)
    rst = bytearray(genuine(syn, 80, "rst"))
    cases: list[tuple[str, TcpFlagScan, bytes]] = [
        ("rst-ack to syn", syn, bytes(rst)),
        ("syn-ack to syn", syn, genuine(syn, 22, "syn-ack")),
        ("retry's answer", syn, genuine(syn, 22, "syn-ack", attempt=3)),
        ("bare syn to syn", syn, genuine(syn, 25, "syn")),
        ("rst to ack", ack, genuine(ack, 443, "rst")),
        ("rst to fin", fin, genuine(fin, 443, "rst")),
        ("syn-ack to fin is ignored", fin, genuine(fin, 443, "syn-ack")),
        ("shifted sequence", syn, tcp_answer(syn.build(TARGET, 80, 0, CTX), "rst", seq_shift=1)),
        ("stray", syn, segment_reply(RST | ACK, 80, 40000, 0, 12345)),
        ("with tcp options", syn, segment_reply(SYN | ACK, 22, 40000, 1, 2, options=(mss(1460),))),
        ("to someone else", syn, bytes(rst[:16]) + pack_address(OTHER) + bytes(rst[20:])),
        ("ip options", syn, segment_reply(RST | ACK, 80, 40000, 0, 1, ip_options=b"\x01\x01\x01\x01")),
        ("fragment", syn, segment_reply(RST | ACK, 80, 40000, 0, 1, frag_offset=8)),
        ("with payload", syn, segment_reply(RST | ACK, 80, 40000, 0, 1, payload=b"xyz")),
        ("truncated", syn, bytes(rst[:39])),
        ("trailing bytes", syn, bytes(rst) + b"\x00" * 6),
        ("empty", syn, b""),
    ]
    for total in (0, 19, 20, 39, 41, 0xFFFF):
        bad = bytearray(rst)
        struct.pack_into("!H", bad, 2, total)
        cases.append((f"total length {total}", syn, bytes(bad)))
    for data_offset in (0, 4, 6, 15):
        bad = bytearray(rst)
        bad[32] = data_offset << 4
        cases.append((f"data offset {data_offset}", syn, bytes(bad)))
    return cases


TABLE = table()


@pytest.mark.parametrize(("name", "module", "datagram"), TABLE, ids=[case[0] for case in TABLE])
def test_fast_path_agrees_with_the_full_parser(name: str, module: TcpFlagScan, datagram: bytes) -> None:
    assert module.match(datagram, CTX) == full_parse(module, datagram, CTX)


def test_the_table_holds_both_answers_and_rejections() -> None:
    outcomes = [case[1].match(case[2], CTX) is not None for case in TABLE]
    assert sum(outcomes) >= 6 and outcomes.count(False) >= 10
    syn = probe_module(ScanType.SYN, None)
    matched = syn.match(genuine(syn, 22, "syn-ack", attempt=3), CTX)
    assert matched is not None and matched[0] == ProbeKey(TARGET, 22, "tcp") and matched[1].attempt == 3
    assert matched[1].ttl == 61 and matched[1].family == 4
    # The common replies really take the fixed-offset path; odd ones are left to the parser.
    assert syn._match_ipv4_tcp(genuine(syn, 80, "rst"), CTX) is not _FULL_PARSE
    assert syn._match_ipv4_tcp(segment_reply(RST | ACK, 80, 40000, 0, 1, ip_options=b"\x01" * 4), CTX) is _FULL_PARSE


@settings(max_examples=300, deadline=None)
@given(
    scan_type=st.sampled_from([ScanType.SYN, ScanType.ACK, ScanType.FIN, ScanType.WINDOW]),
    port=st.integers(1, 0xFFFF),
    kind=st.sampled_from(["rst", "syn-ack", "syn"]),
    edits=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 64),
)
def test_mutated_replies_get_the_same_answer_both_ways(
    scan_type: ScanType, port: int, kind: str, edits: list[tuple[int, int]], cut: int
) -> None:
    module = probe_module(scan_type, None)
    packet = bytearray(genuine(module, port, kind))
    for offset, value in edits:
        if offset < len(packet):
            packet[offset] = value
    datagram = bytes(packet[: len(packet) - cut]) if cut < len(packet) else bytes(packet)
    assert module.match(datagram, CTX) == full_parse(module, datagram, CTX)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=80))
def test_random_bytes_get_the_same_answer_both_ways(datagram: bytes) -> None:
    module = probe_module(ScanType.SYN, None)
    assert module.match(datagram, CTX) == full_parse(module, datagram, CTX)


def test_the_address_caches_stay_bounded_over_a_stream_of_hosts() -> None:
    from leadline.core.probes.tcpflags import _BoundedCache

    cache: _BoundedCache = _BoundedCache()
    for index in range(_BoundedCache._LIMIT + 10):
        cache[index] = str(index)
    assert len(cache) == 10  # emptied once when full, then refilled
