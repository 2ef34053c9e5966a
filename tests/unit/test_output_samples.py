"""Hand-built results shared by the output tests, and nmap's own output for the same scans.

The NMAP_* texts are what nmap 7.93 wrote for a namespace pair
(198.18.201.1 scanning 198.18.201.2, with listeners on 22, 80 and 8000
and port 81 dropped).  The sample results below describe the same scans,
so each sink's output can be compared with nmap's line by line once
"Nmap" is read as "leadline" and nmap's own version as ours.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence

import pytest

from leadline.model import (
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    Reason,
    RunInfo,
    RunStats,
    ScanInfo,
)
from leadline.output.base import Sink

VERSION = "0.1.0"
START = 1795323946  # Sun Nov 22 05:05:46 2026 UTC
SERVICES = {22: "ssh", 80: "http", 81: "hosts2-ns", 8000: "http-alt"}


@pytest.fixture()
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates are printed in local time, as nmap does; pin it to UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def lab_ports(numbers: Sequence[int] = (*range(1, 101), 8000)) -> tuple[PortResult, ...]:
    """The reference target: 22, 80, 8000 open, 81 dropped, everything else refused."""
    ports = []
    for n in numbers:
        if n in (22, 80, 8000):
            ports.append(PortResult(n, "tcp", PortState.OPEN, Reason.SYN_ACK, service=SERVICES[n]))
        elif n == 81:
            ports.append(PortResult(n, "tcp", PortState.FILTERED, Reason.NO_RESPONSE, service=SERVICES[n]))
        else:
            ports.append(PortResult(n, "tcp", PortState.CLOSED, Reason.CONN_REFUSED, service=f"svc{n}"))
    return tuple(ports)


def run_info(args: str = "leadline -sT -p 1-100,8000 198.18.201.2", *, verbosity: int = 0, ping_only: bool = False,
             services: str = "1-100,8000", numservices: int = 101) -> RunInfo:
    scaninfo = () if ping_only else (ScanInfo("connect", "tcp", numservices, services),)
    return RunInfo(args=args, start_time=START, version=VERSION, scaninfo=scaninfo, verbosity=verbosity, ping_only=ping_only)


def up_host(ports: tuple[PortResult, ...] | None = None, *, address: str = "198.18.201.2", latency: float | None = 0.00032,
            reason: Reason = Reason.ARP_RESPONSE, mac: str | None = "06:8A:CE:DF:55:04", **extra: object) -> HostResult:
    return HostResult(
        address=address,
        family=4,
        status=HostStatus.UP,
        status_reason=reason,
        latency=latency,
        ports=lab_ports() if ports is None else ports,
        mac=mac,
        start_time=START + 14,
        end_time=START + 16,
        **extra,  # type: ignore[arg-type]
    )


def down_host(address: str = "198.18.201.9") -> HostResult:
    return HostResult(address=address, family=4, status=HostStatus.DOWN, status_reason=Reason.NO_RESPONSE)


def stats(up: int = 1, down: int = 0, *, elapsed: float = 15.46, exit: str = "success", error: str = "") -> RunStats:
    return RunStats(end_time=START + 16, elapsed=elapsed, hosts_up=up, hosts_down=down, hosts_total=up + down,
                    exit=exit, error_message=error)


def render(sink_factory: type, run: RunInfo, hosts: Sequence[HostResult], end: RunStats | None, **options: object) -> str:
    """Feed one run to a fresh sink and return what it wrote."""
    stream = io.StringIO()
    sink: Sink = sink_factory(stream, **options)
    sink.begin(run)
    for h in hosts:
        sink.host(h)
    if end is not None:
        sink.end(end)
    return stream.getvalue()


def as_leadline(nmap_text: str) -> str:
    """nmap's text with leadline's name and version where nmap names itself."""
    return (
        nmap_text.replace("Nmap 7.93", f"leadline {VERSION}")
        .replace('version="7.93"', f'version="{VERSION}"')
        .replace("Nmap ", "leadline ")
        .replace("nmap -", "leadline -")
    )


# nmap -v -sT -p 1-100,8000 --reason -oA ref 198.18.201.2 198.18.201.9 (the .nmap file, minus its
# "Read data files from" line)
NMAP_VERBOSE_REASON_FILE = """\
# Nmap 7.93 scan initiated Sun Nov 22 05:05:46 2026 as: nmap -v -sT -p 1-100,8000 --reason -oA /tmp/llc/refv 198.18.201.2 198.18.201.9
Nmap scan report for 198.18.201.9 [host down, received no-response]
Nmap scan report for 198.18.201.2
Host is up, received arp-response (0.00032s latency).
Not shown: 97 closed tcp ports (conn-refused)
PORT     STATE    SERVICE   REASON
22/tcp   open     ssh       syn-ack
80/tcp   open     http      syn-ack
81/tcp   filtered hosts2-ns no-response
8000/tcp open     http-alt  syn-ack
MAC Address: 06:8A:CE:DF:55:04 (Unknown)

# Nmap done at Sun Nov 22 05:06:02 2026 -- 2 IP addresses (1 host up) scanned in 15.46 seconds
"""

NMAP_VERBOSE_REASON_GREPABLE = """\
# Nmap 7.93 scan initiated Sun Nov 22 05:05:46 2026 as: nmap -v -sT -p 1-100,8000 --reason -oA /tmp/llc/refv 198.18.201.2 198.18.201.9
# Ports scanned: TCP(101;1-100,8000) UDP(0;) SCTP(0;) PROTOCOLS(0;)
Host: 198.18.201.9 ()\tStatus: Down
Host: 198.18.201.2 ()\tStatus: Up
Host: 198.18.201.2 ()\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///, 81/filtered/tcp//hosts2-ns///, 8000/open/tcp//http-alt///\tIgnored State: closed (97)
# Nmap done at Sun Nov 22 05:06:02 2026 -- 2 IP addresses (1 host up) scanned in 15.46 seconds
"""

# The same run's XML, without nmap's ARP and DNS tasks (leadline's sample run has none).
NMAP_VERBOSE_REASON_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated Sun Nov 22 05:05:46 2026 as: nmap -v -sT -p 1-100,8000 -&#45;reason -oA /tmp/llc/refv 198.18.201.2 198.18.201.9 -->
<nmaprun scanner="nmap" args="nmap -v -sT -p 1-100,8000 -&#45;reason -oA /tmp/llc/refv 198.18.201.2 198.18.201.9" start="1795323946" startstr="Sun Nov 22 05:05:46 2026" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="101" services="1-100,8000"/>
<verbose level="1"/>
<debugging level="0"/>
<host><status state="down" reason="no-response" reason_ttl="0"/>
<address addr="198.18.201.9" addrtype="ipv4"/>
</host>
<taskbegin task="Connect Scan" time="1795323960"/>
<taskend task="Connect Scan" time="1795323962" extrainfo="101 total ports"/>
<host starttime="1795323960" endtime="1795323962"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="198.18.201.2" addrtype="ipv4"/>
<address addr="06:8A:CE:DF:55:04" addrtype="mac"/>
<hostnames>
</hostnames>
<ports><extraports state="closed" count="97">
<extrareasons reason="conn-refused" count="97" proto="tcp" ports="1-21,23-79,82-100"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="ssh" method="table" conf="3"/></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="http" method="table" conf="3"/></port>
<port protocol="tcp" portid="81"><state state="filtered" reason="no-response" reason_ttl="0"/><service name="hosts2-ns" method="table" conf="3"/></port>
<port protocol="tcp" portid="8000"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="http-alt" method="table" conf="3"/></port>
</ports>
<times srtt="319" rttvar="292" to="100000"/>
</host>
<runstats><finished time="1795323962" timestr="Sun Nov 22 05:06:02 2026" summary="Nmap done at Sun Nov 22 05:06:02 2026; 2 IP addresses (1 host up) scanned in 15.46 seconds" elapsed="15.46" exit="success"/><hosts up="1" down="1" total="2"/>
</runstats>
</nmaprun>
"""

VERBOSE_ARGS = "leadline -v -sT -p 1-100,8000 --reason -oA /tmp/llc/refv 198.18.201.2 198.18.201.9"


def verbose_run_events(sink: Sink) -> None:
    """The -v run above, event by event, into ``sink``."""
    sink.begin(run_info(VERBOSE_ARGS, verbosity=1))
    sink.host(down_host())
    sink.task_begin("Connect Scan", START + 14)
    sink.task_end("Connect Scan", START + 16, "101 total ports")
    sink.host(up_host(latency=0.000319))
    sink.end(stats(up=1, down=1))
