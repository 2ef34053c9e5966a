"""Result-model samples for the history tests: every field the store keeps, hostile text included."""

from __future__ import annotations

from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsClass,
    OsMatch,
    OsResult,
    PortResult,
    PortState,
    Reason,
    RunInfo,
    RunStats,
    ScanInfo,
    ScriptElement,
    ScriptResult,
    ServiceDetail,
    Trace,
    TraceHop,
)

__all__ = ["HOSTILE", "RUN", "STATS", "rich_host", "simple_host"]

HOSTILE = "<script>alert(1)</script> \x00 \ud800 & \"quotes\" 'single' \u202e"

RUN = RunInfo(args="leadline -sS -sV 198.18.1.0/24", start_time=1_764_000_000.0, version="0.1.0",
              scaninfo=(ScanInfo("syn", "tcp", 3, "22,80,443"),), verbosity=1, service_scan=True)
STATS = RunStats(end_time=1_764_000_010.0, elapsed=10.0, hosts_up=2, hosts_down=1, hosts_total=3)


def simple_host(address: str, open_ports: tuple[int, ...] = (22,), closed: tuple[int, ...] = (80, 443),
                status: HostStatus = HostStatus.UP) -> HostResult:
    ports = tuple(sorted(
        [PortResult(p, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "ssh" if p == 22 else "http") for p in open_ports]
        + [PortResult(p, "tcp", PortState.CLOSED, Reason.RESET, 64, "http") for p in closed], key=lambda p: p.port))
    return HostResult(address=address, family=6 if ":" in address else 4, status=status,
                      status_reason=Reason.ECHO_REPLY if status is HostStatus.UP else Reason.NO_RESPONSE,
                      status_reason_ttl=64, ports=ports if status is HostStatus.UP else (), latency=0.0012,
                      start_time=1_764_000_001.0, end_time=1_764_000_002.0)


def rich_host(address: str = "198.18.3.10") -> HostResult:
    """A host with version details, nested script tables, OS matches, a trace and hostile strings."""
    detail = ServiceDetail(name="http", product="nginx", version="1.22.1", extrainfo=HOSTILE, method="probed",
                           confidence=10, cpe=("cpe:/a:igor_sysoev:nginx:1.22.1",), tunnel="ssl")
    title = ScriptResult("http-title", HOSTILE, (ScriptElement("title", HOSTILE),
                                                  ScriptElement("nested", children=(ScriptElement(None, "x"),)),
                                                  ScriptElement("empty", children=())))
    ports = (
        PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK, 62, "ssh", evidence=("SYN -> SYN/ACK", "RST")),
        PortResult(80, "tcp", PortState.OPEN, Reason.SYN_ACK, 62, "http", detail=detail, scripts=(title,)),
        PortResult(81, "tcp", PortState.CLOSED, Reason.RESET, 62, None),
        PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE, None, "domain"),
    )
    os_result = OsResult(
        matches=(OsMatch("Linux 5.0 - 5.14", 98, (OsClass("Linux", "Linux", "5.X", "general purpose", 98,
                                                           ("cpe:/o:linux:linux_kernel:5",)),)),
                 OsMatch("Linux 4.15", 91, ())),
        fingerprint="OS:SCAN(V=7.93%E=4)", ports_used=(PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK),))
    trace = Trace("tcp", 80, (TraceHop(1, "198.18.1.1", 0.0004), TraceHop(2, None),
                              TraceHop(3, "198.18.3.10", 0.0009, "far.lab")))
    return HostResult(
        address=address, family=4, status=HostStatus.UP, status_reason=Reason.SYN_ACK, status_reason_ttl=62,
        hostnames=(Hostname("far.lab", "PTR"), Hostname(HOSTILE, "user")), latency=0.0009, ports=ports,
        mac="02:4c:11:00:00:9a", mac_vendor="Private", start_time=1_764_000_003.5, end_time=1_764_000_004.25,
        other_addresses=("198.18.3.11",), distance=3, uptime=12345.0, os=os_result, trace=trace,
        scripts=(ScriptResult("host-script", "line one\nline two"),), warnings=("something odd",),
    )
