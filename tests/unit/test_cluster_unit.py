"""The cluster's pure parts: task batches by reply class, the reply filter, one-line errors,
hosts as rows on their way from a worker."""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle
import struct

import pytest

from leadline.cli.main import main
from leadline.cluster import wire
from leadline.cluster.coordinator import _batches
from leadline.core.targets import Target
from leadline.engines.packetio import protocol_filter
from leadline.model import (
    Hostname,
    HostResult,
    HostStatus,
    OsResult,
    PortResult,
    PortState,
    Reason,
    ScriptResult,
    ServiceDetail,
)


def targets(n: int) -> list[Target]:
    base = int(ipaddress.IPv4Address("198.19.0.0"))
    return [Target(str(ipaddress.IPv4Address(base + i)), 4) for i in range(n)]


@pytest.mark.parametrize(("classes", "size", "count"), [(1, 10, 95), (2, 7, 100), (3, 4096, 32768), (5, 1, 9)])
def test_batches_cover_every_target_once_each_of_one_class(classes: int, size: int, count: int) -> None:
    batches = list(_batches(iter(targets(count)), classes, size))
    seen = [t.address for _, batch in batches for t in batch]
    assert sorted(seen) == sorted(t.address for t in targets(count)) and len(seen) == len(set(seen))
    for share, batch in batches:
        assert 0 < len(batch) <= size
        assert all(int(ipaddress.IPv4Address(t.address)) % classes == share for t in batch)


def run_filter(program: bytes, packet: bytes) -> bool:
    """A tiny classic-BPF interpreter for the opcodes our filters use, outgoing=True (no pkttype)."""
    code = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    a = x = pc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x06:
            return k != 0
        if op == 0x28 and k == 0xFFFFF000:
            a = 0x0800
        elif op == 0x30:
            a = packet[k]
        elif op == 0x20:
            a = int.from_bytes(packet[k:k + 4], "big")
        elif op == 0xB1:
            x = 4 * (packet[k] & 0xF)
        elif op == 0x50:
            a = packet[x + k]
        elif op == 0x48:
            a = int.from_bytes(packet[x + k:x + k + 2], "big")
        elif op == 0x94:
            a %= k
        elif op == 0x15:
            pc += jt if a == k else jf
        else:
            raise AssertionError(f"opcode {op:#x}")


def ip_packet(src: str, protocol: int, first_byte: int) -> bytes:
    header = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, protocol, 0, 0]) + ipaddress.IPv4Address(src).packed + bytes(4)
    return header + bytes([first_byte]) + bytes(7)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_reply_filter_keeps_its_class_and_every_icmp_error(index: int) -> None:
    program = protocol_filter(4, (1, 6), source_share=(index, 3))
    for value in range(30):
        src = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.19.0.0")) + value))
        mine = int(ipaddress.IPv4Address(src)) % 3 == index
        assert run_filter(program, ip_packet(src, 6, 0)) is mine  # TCP
        assert run_filter(program, ip_packet(src, 1, 0)) is mine  # echo reply
        assert run_filter(program, ip_packet(src, 1, 14)) is mine  # timestamp reply
        assert run_filter(program, ip_packet(src, 1, 3)) is True  # unreachable: the quote decides
        assert run_filter(program, ip_packet(src, 17, 0)) is False  # not asked for


def test_cluster_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-sn", "--cluster", "udp://x", "127.0.0.1"]) != 0
    assert main(["-sn", "--cluster", "local:0", "127.0.0.1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "tcp://HOST:PORT or local:N" in err[0] and "local:N needs N from 1" in err[1]


def sample_hosts() -> list[HostResult]:
    """A sweep's host, a port scan's host with every kind of nested detail, and a host down."""
    swept = HostResult("198.19.0.1", 4, HostStatus.UP, Reason.ECHO_REPLY, 63, latency=0.0012,
                       start_time=1.5, end_time=2.5)
    ports = (PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "ssh", ("syn-ack from 22",),
                        ServiceDetail("ssh"), (ScriptResult("banner", "SSH-2.0"),)),
             PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE))
    scanned = HostResult("fe80::1%eth0", 6, HostStatus.UP, Reason.SYN_ACK, 64, (Hostname("a.example", "PTR"),),
                         0.002, ports, "02:00:00:00:00:01", "Acme", 1.0, 3.0, ("fe80::2",), distance=1,
                         os=OsResult(fingerprint="OS:SCAN(V=1)"), scripts=(ScriptResult("h", "x"),),
                         warnings=("w",), interrupted=True, through="proxy")
    down = HostResult("198.19.0.2", 4, HostStatus.DOWN, Reason.NO_RESPONSE, timed_out=True)
    return [swept, scanned, down]


def test_rows_bring_back_equal_hosts_naming_the_worker() -> None:
    rows = pickle.loads(pickle.dumps(wire.pack(sample_hosts()), protocol=5))
    assert len(rows) == 3
    assert wire.unpack(rows, scanned_by="tcp://198.18.82.11:4000") == [
        dataclasses.replace(h, scanned_by="tcp://198.18.82.11:4000") for h in sample_hosts()]
    assert wire.unpack(rows) == sample_hosts()
    assert all(type(p) is PortResult for p in wire.unpack(rows)[1].ports)


def test_rows_of_another_version_are_refused() -> None:
    rows = wire.pack(sample_hosts())
    with pytest.raises(ValueError, match="another version"):
        wire.unpack(dataclasses.replace(rows, host_fields=rows.host_fields[:-1]))
