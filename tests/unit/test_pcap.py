"""The pcap writer (read back by scapy and by hand) and the packet-trace lines."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from leadline.core.probes.base import ProbeContext
from leadline.engines.fake import OPEN, Answer, FakeHost, FakeNetwork, PortBehaviour
from leadline.output.packettrace import format_packet, trace_line
from leadline.output.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter
from tests.unit.rawprobe_fixture import FixtureSynScan, cookie

CTX = ProbeContext("198.18.1.2", b"0123456789abcdef")
TARGET = "198.18.1.10"


def exchange(port: int, host: FakeHost) -> tuple[bytes, bytes]:
    probe = FixtureSynScan().build(TARGET, port, 0, CTX)
    net = FakeNetwork({TARGET: host})
    net.send(probe.packet, 0.0)
    [(_, reply)] = net.receive(1.0)
    return probe.packet, reply


def test_records_read_back_with_scapy(tmp_path: Path) -> None:
    syn, synack = exchange(22, FakeHost(ports={22: OPEN}))
    path = tmp_path / "out.pcap"
    with PcapWriter(path) as writer:
        writer.write(syn, 1_700_000_000.25)
        writer.write(synack, 1_700_000_000.2503)
    packets = rdpcap(str(path))
    assert [bytes(p) for p in packets] == [syn, synack]
    assert float(packets[1].time) == 1_700_000_000.2503
    assert IP(bytes(packets[1]))[TCP].flags == "SA"


def test_header_magic_linktype_and_nanoseconds() -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream, LINKTYPE_ETHERNET, nanosecond=True, snaplen=4)
    writer.write(b"\x01\x02\x03\x04\x05\x06", 12.000000123)
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("=IHHiIII", stream.getvalue()[:24])
    assert (magic, major, minor, snaplen, linktype) == (0xA1B23C4D, 2, 4, 4, LINKTYPE_ETHERNET)
    assert struct.unpack("=IIII", stream.getvalue()[24:40]) == (12, 123, 4, 6)
    assert stream.getvalue()[40:] == b"\x01\x02\x03\x04"
    assert LINKTYPE_RAW == 101


def test_an_unclosed_file_is_readable_after_the_flush_interval(tmp_path: Path) -> None:
    syn, _ = exchange(23, FakeHost())
    path = tmp_path / "live.pcap"
    writer = PcapWriter(path, flush_interval=0.25)
    writer.write(syn, 100.0)
    writer.write(syn, 100.1)
    writer.write(syn, 100.4)  # 0.4 s after the last flush: flushed now
    assert len(rdpcap(str(path))) == 3
    writer.close()


def test_trace_lines_follow_nmaps_layout() -> None:
    syn, synack = exchange(22, FakeHost(ports={22: OPEN}))
    sport, seq = cookie(CTX.secret, TARGET, 22)
    assert trace_line("SENT", 0.036, syn) == (
        f"SENT (0.0360s) TCP 198.18.1.2:{sport} > 198.18.1.10:22 S ttl=64 id=4242 iplen=44  seq={seq} win=1024 <mss 1460>"
    )
    line = trace_line("RCVD", 0.0362, synack)
    assert line.startswith(f"RCVD (0.0362s) TCP 198.18.1.10:22 > 198.18.1.2:{sport} SA ttl=64 id=")
    assert line.endswith("win=64240 <mss 1460>")
    _, rst = exchange(25, FakeHost())
    assert f"198.18.1.10:25 > 198.18.1.2:{cookie(CTX.secret, TARGET, 25)[0]} RA ttl=64" in format_packet(rst)


def test_icmp_errors_name_the_port_or_the_reason() -> None:
    _, port_unreachable = exchange(993, FakeHost(ports={993: PortBehaviour(Answer.ICMP, 3)}))
    assert format_packet(port_unreachable).startswith(
        "ICMP [198.18.1.10 > 198.18.1.2 Port 993 unreachable (type=3/code=3) ] IP [ttl=64 id="
    )
    _, prohibited = exchange(143, FakeHost(ports={143: PortBehaviour(Answer.ICMP, 13)}))
    assert "Communication administratively prohibited (type=3/code=13)" in format_packet(prohibited)
    assert format_packet(b"\x00\x01") == "unknown packet (2 bytes)"
