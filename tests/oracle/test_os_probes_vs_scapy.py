"""OS detection's probes read by scapy, field for field, against nmap's documented values."""

from __future__ import annotations

import logging
import random
import warnings

import pytest

from leadline.core.osprobes import ECN_URGENT, U1_IPID, WINDOWS, make_plan, round_probes

logging.getLogger("scapy").setLevel(logging.ERROR)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.layers.inet import ICMP, IP, TCP, UDP

PLAN = make_plan("198.18.1.2", "198.18.1.10", 22, 1, 40000, random.Random(7))
PROBES = {p.name: p for p in round_probes(PLAN, random.Random(8))}

# scapy's names for nmap's option lists (mss, wscale, sack, timestamps as (TSval, TSecr)).
TS = ("Timestamp", (0xFFFFFFFF, 0))
EXPECTED_OPTIONS = {
    "SEQ1": [("WScale", 10), ("NOP", None), ("MSS", 1460), TS, ("SAckOK", b"")],
    "SEQ2": [("MSS", 1400), ("WScale", 0), ("SAckOK", b""), TS, ("EOL", None)],
    "SEQ3": [TS, ("NOP", None), ("NOP", None), ("WScale", 5), ("NOP", None), ("MSS", 640)],
    "SEQ4": [("SAckOK", b""), TS, ("WScale", 10), ("EOL", None)],
    "SEQ5": [("MSS", 536), ("SAckOK", b""), TS, ("WScale", 10), ("EOL", None)],
    "SEQ6": [("MSS", 265), ("SAckOK", b""), TS],
    "ECN": [("WScale", 10), ("NOP", None), ("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("NOP", None)],
    **{f"T{n}": [("WScale", 10), ("NOP", None), ("MSS", 265), TS, ("SAckOK", b"")] for n in range(2, 7)},
    "T7": [("WScale", 15), ("NOP", None), ("MSS", 265), TS, ("SAckOK", b"")],
}
FLAGS = {"ECN": "SEC", "T2": "", "T3": "FSPU", "T4": "A", "T5": "S", "T6": "A", "T7": "FPU"}
DF_SET = {"T2", "T4", "T6"}


def _checksums_valid(packet: IP) -> None:
    clone = IP(bytes(packet))
    layer = clone.payload
    stored_ip, stored_l4 = clone.chksum, layer.chksum
    del clone.chksum
    del layer.chksum
    again = IP(bytes(clone))
    assert again.chksum == stored_ip
    assert again.payload.chksum == stored_l4


@pytest.mark.parametrize("name", list(EXPECTED_OPTIONS))
def test_tcp_probe_fields(name: str) -> None:
    packet = IP(PROBES[name].datagram)
    tcp = packet[TCP]
    index = [*(f"SEQ{i}" for i in range(1, 7)), "ECN", "T2", "T3", "T4", "T5", "T6", "T7"].index(name)
    assert tcp.window == WINDOWS[index]
    assert [(k, v) for k, v in tcp.options] == EXPECTED_OPTIONS[name]
    if name.startswith("SEQ"):
        assert str(tcp.flags) == "S"
        assert tcp.seq == (PLAN.seq_base + index) % 2**32 and tcp.ack == PLAN.ack
    else:
        assert set(str(tcp.flags)) == set(FLAGS[name])
    assert bool(packet.flags.DF) == (name in DF_SET)
    assert tcp.dport == (PLAN.closed_port if name in ("T5", "T6", "T7") else PLAN.open_port)
    assert tcp.sport == PLAN.tcp_source(name)
    _checksums_valid(packet)


def test_ecn_probe_reserved_bit_and_urgent_pointer() -> None:
    tcp = IP(PROBES["ECN"].datagram)[TCP]
    assert tcp.reserved == 4  # scapy's 3-bit field: the top reserved bit of nmap's nibble (0x8 << 8)
    assert tcp.urgptr == ECN_URGENT
    assert tcp.ack == 0


def test_icmp_echo_probes() -> None:
    first, second = IP(PROBES["IE1"].datagram), IP(PROBES["IE2"].datagram)
    assert (first.tos, bool(first.flags.DF), first[ICMP].code, len(first[ICMP].payload)) == (0, True, 9, 120)
    assert (second.tos, bool(second.flags.DF), second[ICMP].code, len(second[ICMP].payload)) == (4, False, 0, 150)
    assert second[ICMP].id == first[ICMP].id + 1 and second[ICMP].seq == first[ICMP].seq + 1 == 296
    assert first[ICMP].type == 8
    _checksums_valid(first)
    _checksums_valid(second)


def test_udp_probe() -> None:
    packet = IP(PROBES["U1"].datagram)
    assert packet.id == U1_IPID and packet.len == 328 and packet.ttl == PLAN.udp_ttl
    assert bytes(packet[UDP].payload) == b"C" * 300
    assert packet[UDP].dport == 40000 and packet[UDP].chksum == PLAN.udp_checksum()
    _checksums_valid(packet)


def test_seq_probes_are_100ms_apart_and_the_rest_follow_the_last() -> None:
    times = {name: probe.at for name, probe in PROBES.items()}
    assert [round(times[f"SEQ{i}"], 3) for i in range(1, 7)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert all(times[n] == pytest.approx(0.5) for n in ("IE1", "IE2", "U1", "ECN", "T2", "T7"))
    order = list(PROBES)
    assert order.index("IE1") < order.index("ECN") < order.index("T2")
