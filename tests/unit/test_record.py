"""A host's record frozen into the result every output reads: every field carried over, by name."""

from __future__ import annotations

import dataclasses

from leadline.core.targets import Target
from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsResult,
    PortResult,
    PortState,
    Reason,
    ScriptResult,
    Trace,
    TraceHop,
)
from leadline.pipeline.record import HostRecord


def test_freeze_carries_every_field_to_the_field_of_that_name() -> None:
    record = HostRecord(Target("198.18.1.10", 4, "course.lab", ("198.18.1.11",)))
    record.mark(True, Reason.SYN_ACK, 0.0012, ttl=63, mac="02:00:00:00:00:0A")
    record.ptr = "course.example"
    record.timed_out = True
    record.interrupted = True
    record.distance = 2
    record.uptime = 12345.0
    record.os = OsResult()
    record.trace = Trace(port=80, protocol="tcp", hops=(TraceHop(1, "198.18.1.1", 0.5),))
    record.scripts.append(ScriptResult("smb-os-discovery", "out"))
    record.warnings.append("careful")
    record.through = "through a zombie"
    ports = (PortResult(80, "tcp", PortState.OPEN, Reason.SYN_ACK, 63, "http"),)
    frozen = record.freeze(ports, 1000.0, "Acme")
    expected = HostResult(
        address="198.18.1.10", family=4, status=HostStatus.UP, status_reason=Reason.SYN_ACK, status_reason_ttl=63,
        hostnames=(Hostname("course.lab", "user"), Hostname("course.example", "PTR")), latency=0.0012, ports=ports,
        mac="02:00:00:00:00:0A", mac_vendor="Acme", start_time=1000.0, end_time=frozen.end_time,
        other_addresses=("198.18.1.11",), timed_out=True, distance=2, uptime=12345.0, os=OsResult(),
        trace=record.trace, scripts=(ScriptResult("smb-os-discovery", "out"),), warnings=("careful",),
        interrupted=True, through="through a zombie",
    )
    assert frozen == expected
    assert frozen.end_time is not None and frozen.end_time >= 1000.0
    # Each field distinct from its neighbours' values, so a swap could not pass unseen:
    values = [getattr(frozen, f.name) for f in dataclasses.fields(HostResult) if f.name != "scanned_by"]
    assert all(a != b for a, b in zip(values, values[1:]))


def test_a_record_without_names_freezes_with_none() -> None:
    frozen = HostRecord(Target("198.18.1.10", 4)).freeze((), 0.0, None)
    assert frozen.hostnames == () and frozen.status is HostStatus.UNKNOWN
    only_ptr = HostRecord(Target("198.18.1.10", 4))
    only_ptr.ptr = "x.example"
    assert only_ptr.freeze((), 0.0, None).hostnames == (Hostname("x.example", "PTR"),)
