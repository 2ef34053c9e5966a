"""The evidence object engines are handed: pcap records, trace lines (IP and ARP), and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import rdpcap

from leadline.core.evidence import PacketEvidence
from leadline.core.packet.arp import REPLY, REQUEST, ARPPacket, build_arp
from leadline.core.packet.ethernet import BROADCAST, ETHERTYPE_ARP, EthernetFrame, build_ethernet
from leadline.core.probes.base import ProbeContext
from leadline.errors import UsageError
from leadline.output.evidence import open_evidence
from tests.unit.rawprobe_fixture import FixtureSynScan

CTX = ProbeContext("198.18.1.2", b"0123456789abcdef")


def test_nothing_asked_for_is_none() -> None:
    assert open_evidence(None, None) is None


def test_pcap_and_trace_both_written(tmp_path: Path) -> None:
    lines: list[str] = []
    evidence = open_evidence(str(tmp_path / "x.pcap"), lines.append)
    assert evidence is not None
    sink: PacketEvidence = evidence  # satisfies the engine-facing protocol
    assert sink.captures and sink.traces
    syn = FixtureSynScan().build("198.18.1.10", 22, 0, CTX).packet
    sink.record(syn, 1_700_000_000.5)
    sink.sent(syn, 0.25)
    sink.flush()
    evidence.close()
    assert [bytes(p) for p in rdpcap(str(tmp_path / "x.pcap"))] == [syn]
    assert lines[0].startswith("SENT (0.2500s) TCP 198.18.1.2:") and "> 198.18.1.10:22 S " in lines[0]


def test_arp_frames_are_traced_as_nmap_does_and_never_reach_the_pcap(tmp_path: Path) -> None:
    lines: list[str] = []
    evidence = open_evidence(None, lines.append)
    assert evidence is not None and not evidence.captures
    ask = ARPPacket(REQUEST, "02:4c:11:01:00:02", "198.18.1.2", "00:00:00:00:00:00", "198.18.1.10")
    answer = ARPPacket(REPLY, "02:4c:11:01:00:0a", "198.18.1.10", "02:4c:11:01:00:02", "198.18.1.2")
    evidence.sent(build_ethernet(EthernetFrame(BROADCAST, "02:4c:11:01:00:02", ETHERTYPE_ARP, build_arp(ask))), 0.0012, frame=True)
    evidence.received(build_ethernet(EthernetFrame("02:4c:11:01:00:02", "02:4c:11:01:00:0a", ETHERTYPE_ARP, build_arp(answer))), 0.0015, frame=True)
    evidence.received(b"\x00" * 10, 0.002, frame=True)
    assert lines == [
        "SENT (0.0012s) ARP who-has 198.18.1.10 tell 198.18.1.2",
        "RCVD (0.0015s) ARP reply 198.18.1.10 is-at 02:4C:11:01:00:0A",
        "RCVD (0.0020s) ARP (10 bytes)",
    ]


def test_unwritable_pcap_is_one_usage_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^cannot write --pcap file '.*/missing/x.pcap': No such file or directory$"):
        open_evidence(str(tmp_path / "missing" / "x.pcap"), None)
