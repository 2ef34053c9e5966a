"""The scan pipeline: targets → discovery → port scan → names → sinks.

Targets are a lazy stream cut into host groups, so memory depends on the
group size, never on the size of the target range.  Each finished host
goes to the sink at once; an interrupted scan still reports every host
it finished.  Which engine does the work (connect or raw packets) is
decided here from the scan types and our privileges; the engines know
nothing of targets files, outputs or names.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from leadline import __version__
from leadline.config import ScanConfig, ScanType, Timing
from leadline.core.ports import PortList, compact, select_ports
from leadline.core.targets import Target, iter_targets, parse_target_spec, shuffled_in_blocks
from leadline.detect.oui import vendor_for
from leadline.engines import resolve
from leadline.errors import PrivilegeError, UsageError
from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    PortResult,
    Reason,
    RunInfo,
    RunStats,
    ScanInfo,
)
from leadline.output.base import Sink
from leadline.output.formatting import named_address, scanning_text, sort_ports
from leadline.services import ServiceTable

if TYPE_CHECKING:
    from leadline.engines.discovery import DiscoveryResult

Warn = Callable[[str], None]

# Hosts scanned together.  Connect scans keep many sockets per host in
# flight, so groups stay modest; discovery-only sweeps take more at once.
PORT_SCAN_GROUP = 64
RAW_SCAN_GROUP_MAX = 16384
RAW_SCAN_RESULTS_PER_GROUP = 262144  # port results held before a group's hosts are written

# nmap's names for each scan's task lines (normal output and XML taskbegin).
TASK_NAMES = {
    ScanType.CONNECT: "Connect Scan",
    ScanType.SYN: "SYN Stealth Scan",
    ScanType.FIN: "FIN Scan",
    ScanType.XMAS: "XMAS Scan",
    ScanType.NULL: "NULL Scan",
    ScanType.ACK: "ACK Scan",
    ScanType.WINDOW: "Window Scan",
    ScanType.MAIMON: "Maimon Scan",
    ScanType.CUSTOM: "Custom Scan",
    ScanType.UDP: "UDP Scan",
}
DISCOVERY_GROUP = 1024


def _scanning(up: Sequence[Target], ports: int) -> str:
    return scanning_text([named_address(t.hostname, t.address) for t in up], ports)


def is_privileged(config: ScanConfig) -> bool:
    """Raw sockets are ours if we are root, unless --unprivileged says to act as if not."""
    if config.privileged is not None:
        return config.privileged
    return os.geteuid() == 0


def raw_engine_available() -> bool:
    try:
        import leadline.engines.raw  # noqa: F401
        import leadline.core.probes.registry  # noqa: F401
    except ImportError:
        return False
    return True


def effective_scan_types(config: ScanConfig, privileged: bool) -> tuple[ScanType, ...]:
    """What will run: the requested types, or nmap's default for our privileges."""
    if config.ping_only or config.list_only:
        return ()
    if config.scan_types:
        wanted = config.scan_types
    elif privileged and raw_engine_available():
        wanted = (ScanType.SYN,)
    else:
        wanted = (ScanType.CONNECT,)
    if ScanType.UDP in wanted:
        raise UsageError("the UDP scan (-sU) is not implemented yet; TCP scans and discovery are")
    needs_root = [t for t in wanted if t.needs_root]
    if needs_root and not privileged:
        if os.geteuid() == 0:
            raise UsageError(f"the {needs_root[0].value} scan needs raw packets, which --unprivileged rules out")
        raise PrivilegeError(f"the {needs_root[0].value} scan ({needs_root[0].flag}) needs root privileges")
    if needs_root and not raw_engine_available():
        raise UsageError(f"the {needs_root[0].value} scan is not available in this build")
    return wanted


def _exchange_line(exchange: tuple[str, ...], verdict: object) -> tuple[str, ...]:
    """The --explain line for one port: the probes and replies in order, joined by arrows.

    When a SYN/ACK answers our SYN, no socket of ours exists, so our kernel
    resets the half-open connection: that RST ends the exchange.
    """
    if not exchange:
        return ()
    steps = list(exchange)
    if steps[-1].startswith("SYN/ACK") and steps[0].startswith("SYN") and "ACK" not in steps[0]:
        steps.append("RST (from our kernel)")
    return (" \u2192 ".join(steps),)


def neighbour_mac(address: str) -> str | None:
    """The kernel's resolved MAC for a directly connected IPv4 ``address`` (/proc/net/arp), if any."""
    try:
        with open("/proc/net/arp", encoding="ascii") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 4 and fields[0] == address and int(fields[2], 16) & 0x2:  # ATF_COM: complete
                    return fields[3].upper()
    except (OSError, ValueError):
        return None
    return None


@dataclass
class _Counts:
    up: int = 0
    down: int = 0
    total: int = 0


class Scan:
    """One run of the pipeline for one ScanConfig."""

    def __init__(
        self,
        config: ScanConfig,
        sink: Sink,
        *,
        warn: Warn,
        stop: threading.Event | None = None,
        extra_targets: Iterable[str] = (),
        extra_excludes: Iterable[str] = (),
        services: ServiceTable | None = None,
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.warn = warn
        self.stop = stop or threading.Event()
        self.extra_targets = extra_targets
        self.extra_excludes = tuple(extra_excludes)
        self.services = services or ServiceTable.load()
        self.privileged = is_privileged(config)
        self.scan_types = effective_scan_types(config, self.privileged)
        protocols = {t.protocol for t in self.scan_types} or {"tcp"}
        self.ports: PortList = select_ports(
            spec=config.ports,
            top_ports=config.top_ports,
            exclude=config.exclude_ports,
            protocols=protocols,
            services=self.services,
        )
        self.trace = trace if config.packet_trace else None
        from leadline.output.evidence import open_evidence

        self.pcap = open_evidence(config.pcap, self.trace)
        self.counts = _Counts()
        # What discovery learned beyond up/down (MAC, reply TTL), until the host is written.
        self.link_facts: dict[str, tuple[str | None, int | None]] = {}
        self.port_key = random.getrandbits(32)
        # Parse every spec now, so a typo fails before any output starts;
        # expansion itself stays lazy.
        self.extra_targets = list(self.extra_targets)
        for spec in itertools.chain(config.targets, self.extra_targets):
            parse_target_spec(spec, ipv6=config.ipv6)
        self.target_stream = self.targets()

    # -- the run -------------------------------------------------------
    def run_info(self, start: float) -> RunInfo:
        infos = []
        for t in self.scan_types:
            plist = self.ports.udp if t.protocol == "udp" else self.ports.tcp
            infos.append(ScanInfo(t.value, t.protocol, len(plist), compact(plist)))
        return RunInfo(
            args=self.config.args,
            start_time=start,
            version=__version__,
            scaninfo=tuple(infos),
            verbosity=self.config.verbosity,
            debugging=self.config.debugging,
            ping_only=self.config.ping_only,
            list_only=self.config.list_only,
        )

    def targets(self) -> Iterator[Target]:
        specs = itertools.chain(self.config.targets, self.extra_targets)
        stream = iter_targets(
            specs,
            exclude=self.config.exclude + self.extra_excludes,
            resolve=resolve.resolve_name,
            ipv6=self.config.ipv6,
            warn=self.warn,
        )
        if self.config.randomize_hosts:
            return shuffled_in_blocks(stream, random.Random())
        return stream

    def run(self) -> RunStats:
        """Run to the end, or until ``stop`` is set; the sinks are always closed."""
        start = time.time()
        t0 = time.monotonic()
        self.sink.begin(self.run_info(start))
        exit_status = "error"
        error = "interrupted"
        try:
            self.scan_all()
            if not self.stop.is_set():
                exit_status, error = "success", ""
        except KeyboardInterrupt:
            pass
        except BaseException as e:  # close every output before the error travels on
            error = str(e) or type(e).__name__
            self.sink.end(self.stats(t0, exit_status, error))
            raise
        finally:
            if self.pcap is not None:
                self.pcap.close()
        stats = self.stats(t0, exit_status, error)
        if self.counts.total == 0 and exit_status == "success":
            self.warn("WARNING: No targets were specified, so 0 hosts scanned.")
        self.sink.end(stats)
        return stats

    def scan_all(self) -> None:
        if not (self.scan_types or self.config.list_only or self.config.skip_discovery) and self.raw_discovery_applies():
            self.ping_sweep()
            return
        group_size = self.group_size()
        if self.config.timing.max_hostgroup:
            group_size = min(group_size, self.config.timing.max_hostgroup)
        group_size = max(group_size, self.config.timing.min_hostgroup)
        stream = self.target_stream
        while not self.stop.is_set():
            group = list(itertools.islice(stream, group_size))
            if not group:
                break
            self.scan_group(group)

    def group_size(self) -> int:
        """Hosts scanned together.

        A connect scan holds sockets per host, so its groups stay modest.  A
        raw scan's session holds only the probes in flight, so its groups are
        bounded by the port results they collect before hosts are written:
        a sweep of a few ports takes thousands of hosts at once, ``-p-``
        takes the minimum.
        """
        if not self.scan_types:
            return DISCOVERY_GROUP
        if ScanType.CONNECT in self.scan_types:
            return PORT_SCAN_GROUP
        ports = max(1, len(self.ports.tcp))
        return max(PORT_SCAN_GROUP, min(RAW_SCAN_GROUP_MAX, RAW_SCAN_RESULTS_PER_GROUP // ports))

    def stats(self, t0: float, exit_status: str, error: str) -> RunStats:
        elapsed = time.monotonic() - t0
        c = self.counts
        summary = (
            f"leadline done at {time.strftime('%a %b %d %H:%M:%S %Y', time.localtime())}; "
            f"{c.total} IP address{'es' if c.total != 1 else ''} ({c.up} host{'s' if c.up != 1 else ''} up) "
            f"scanned in {elapsed:.2f} seconds"
        )
        return RunStats(
            end_time=time.time(),
            elapsed=elapsed,
            hosts_up=c.up,
            hosts_down=c.down,
            hosts_total=c.total,
            exit=exit_status,
            summary=summary,
            error_message=error,
        )

    # -- one host group ------------------------------------------------
    def scan_group(self, group: Sequence[Target]) -> None:
        started = time.time()
        if self.config.list_only:
            names = self.reverse_names([t.address for t in group], listing=True)
            for t in group:
                self.emit(t, HostStatus.UNKNOWN, Reason.USER_SET, None, (), names, started)
                self.counts.total += 1
            return
        alive = self.discover(group)
        up = [t for t in group if alive[t.address][0]]
        for t in group:
            if not alive[t.address][0]:
                self.counts.down += 1
                self.counts.total += 1
                if self.config.dns == "always":
                    names = self.reverse_names([t.address])
                else:
                    names = {}
                self.emit(t, HostStatus.DOWN, alive[t.address][1], None, (), names, started)
        if not up:
            return
        if not self.scan_types:
            names = self.reverse_names([t.address for t in up])
            for t in up:
                _, reason, latency = alive[t.address]
                self.counts.up += 1
                self.counts.total += 1
                self.emit(t, HostStatus.UP, reason, latency, (), names, started)
            return
        self.port_scan(up, alive, started)

    def discover(self, group: Sequence[Target]) -> dict[str, tuple[bool, Reason, float | None]]:
        """Which hosts are up, why, and their latency (MACs and reply TTLs go to ``self.link_facts``)."""
        raw_port_scan = any(t is not ScanType.CONNECT for t in self.scan_types)
        if self.config.skip_discovery:
            if self.raw_discovery_applies() and self.arp_allowed() and raw_port_scan:
                return self.arp_only_discovery(group)
            if self.neighbour_discovery_applies() and self.arp_allowed() and raw_port_scan:
                return self.neighbour_discovery(group, on_link_only=True)
            return {t.address: (True, Reason.USER_SET, None) for t in group}
        if self.raw_discovery_applies():
            return self.raw_discovery(group)
        if self.neighbour_discovery_applies():
            return self.neighbour_discovery(group)
        from leadline.engines.connect import connect_ping

        result: dict[str, tuple[bool, Reason, float | None]] = {
            t.address: (False, Reason.NO_RESPONSE, None) for t in group
        }
        ports = (80, 443)
        for probe in self.config.discovery_probes:
            if probe.kind in ("syn", "ack") and probe.ports:
                ports = probe.ports
        self.sink.task_begin("Ping Scan", time.time())
        for r in connect_ping([t.address for t in group], ports, self.config.timing):
            result[r.address] = (r.up, r.reason, r.latency)
        self.sink.task_end("Ping Scan", time.time(), f"{len(group)} total hosts")
        return result

    # nmap as root: raw probes for IPv4 (ARP on directly connected Ethernet), connect() otherwise.
    def raw_discovery_applies(self) -> bool:
        return self.privileged and not self.config.ipv6 and raw_engine_available()

    def neighbour_discovery_applies(self) -> bool:
        return self.privileged and self.config.ipv6 and raw_engine_available()

    def neighbour_discovery(self, group: Sequence[Target], on_link_only: bool = False) -> dict[str, tuple[bool, Reason, float | None]]:
        """IPv6 as root: neighbour solicitation on the link, pings beyond it.

        With ``on_link_only`` (-Pn with a raw scan) only directly connected
        targets are solicited, as nmap does, and every target stays up.
        """
        from leadline.engines.ndp import Ipv6Routes, ndp_discover

        result: dict[str, tuple[bool, Reason, float | None]] = {
            t.address: ((True, Reason.USER_SET, None) if on_link_only else (False, Reason.NO_RESPONSE, None))
            for t in group
        }
        addresses = [t.address for t in group]
        if on_link_only:
            routes = Ipv6Routes.load()
            addresses = [a for a in addresses if routes.nd_reaches(a)]
        if not addresses:
            return result
        neighbours = on_link_only or self.all_on_link6(addresses)
        task = "ND Ping Scan" if neighbours else "Ping Scan"
        self.sink.task_begin(task, time.time(), scanning_text(addresses, self.probes_per_host(neighbours=neighbours)))
        for r in ndp_discover(addresses, self.config.timing, probes=self.config.discovery_probes, stop=self.stop, evidence=self.pcap):
            if on_link_only and not r.up:
                continue
            result[r.address] = (r.up, r.reason, r.latency)
            self.link_facts[r.address] = (r.mac, r.ttl)
        self.sink.task_end(task, time.time(), f"{len(addresses)} total hosts")
        return result

    @staticmethod
    def all_on_link6(addresses: Sequence[str]) -> bool:
        from leadline.engines.ndp import Ipv6Routes

        routes = Ipv6Routes.load()
        return all(routes.nd_reaches(address) for address in addresses)

    def arp_allowed(self) -> bool:
        return not (self.config.disable_arp_ping or self.config.send_ip)

    def raw_discovery_results(self, addresses: Iterable[str]) -> Iterator[DiscoveryResult]:
        from leadline.engines.discovery import raw_discover

        return raw_discover(
            addresses,
            self.config.discovery_probes,
            self.config.timing,
            arp=self.arp_allowed(),
            stop=self.stop,
            evidence=self.pcap,
        )

    def raw_discovery(self, group: Sequence[Target]) -> dict[str, tuple[bool, Reason, float | None]]:
        result: dict[str, tuple[bool, Reason, float | None]] = {
            t.address: (False, Reason.NO_RESPONSE, None) for t in group
        }
        addresses = [t.address for t in group]
        neighbours = self.arp_reaches_all(addresses)
        task = "ARP Ping Scan" if neighbours else "Ping Scan"
        self.sink.task_begin(task, time.time(), scanning_text(addresses, self.probes_per_host(neighbours=neighbours)))
        for r in self.raw_discovery_results(t.address for t in group):
            result[r.address] = (r.up, r.reason, r.latency)
            self.link_facts[r.address] = (r.mac, r.ttl)
        self.sink.task_end(task, time.time(), f"{len(group)} total hosts")
        return result

    def probes_per_host(self, *, neighbours: bool) -> int:
        """How many probes discovery sends each host: one ARP or ND request to ``neighbours``,
        else the -P probes (a TCP or UDP probe per port), nmap's default four when none were given."""
        if neighbours:
            return 1
        probes = self.config.discovery_probes
        if not probes:
            return 4
        return sum(len(probe.ports) if probe.kind in ("syn", "ack", "udp") else 1 for probe in probes)

    def arp_reaches_all(self, addresses: Sequence[str]) -> bool:
        """Whether raw IPv4 discovery of ``addresses`` is ARP alone: nmap then calls the
        task "ARP Ping Scan", else "Ping Scan"."""
        from leadline.engines.discovery import RouteTable

        if not addresses or not self.arp_allowed():
            return False
        routes = RouteTable.load()
        return all(routes.arp_reaches(address) for address in addresses)

    def arp_only_discovery(self, group: Sequence[Target]) -> dict[str, tuple[bool, Reason, float | None]]:
        """-Pn with a raw scan: nmap still ARPs directly connected targets, and one that stays silent is down."""
        from leadline.engines.discovery import RouteTable

        routes = RouteTable.load()
        result: dict[str, tuple[bool, Reason, float | None]] = {}
        neighbours = []
        for t in group:
            if routes.arp_reaches(t.address):
                neighbours.append(t.address)
            result[t.address] = (True, Reason.USER_SET, None)
        if neighbours:
            wanted = set(neighbours)
            result.update(self.raw_discovery([t for t in group if t.address in wanted]))
        return result

    def ping_sweep(self) -> None:
        """-sn as root: one stream through the raw discovery engine, hosts written in target order as decided."""
        waiting: dict[str, list[Target]] = {}

        def addresses() -> Iterator[str]:
            for t in self.target_stream:
                waiting.setdefault(t.address, []).append(t)
                yield t.address

        chunk: list[tuple[Target, DiscoveryResult]] = []
        started = time.time()
        # The stream is not read ahead to name the task: the first target speaks for the sweep.
        first = next(iter(self.target_stream), None)
        if first is not None:
            self.target_stream = itertools.chain([first], self.target_stream)
        task = "ARP Ping Scan" if self.arp_reaches_all([first.address] if first is not None else []) else "Ping Scan"
        self.sink.task_begin(task, started)
        total = 0
        for r in self.raw_discovery_results(addresses()):
            for t in waiting.pop(r.address, []):
                chunk.append((t, r))
                total += 1
            if self.config.dns == "never" or len(chunk) >= DISCOVERY_GROUP:
                self.emit_sweep_chunk(chunk, started)
                chunk, started = [], time.time()
        self.emit_sweep_chunk(chunk, started)
        self.sink.task_end(task, time.time(), f"{total} total hosts")

    def emit_sweep_chunk(self, chunk: list[tuple[Target, DiscoveryResult]], started: float) -> None:
        if not chunk:
            return
        wanted = [t.address for t, r in chunk if r.up or self.config.dns == "always"]
        names = self.reverse_names(wanted) if wanted else {}
        for t, r in chunk:
            self.counts.total += 1
            if r.up:
                self.counts.up += 1
            else:
                self.counts.down += 1
            status = HostStatus.UP if r.up else HostStatus.DOWN
            self.emit(t, status, r.reason, r.latency, (), names, started, mac=r.mac, reason_ttl=r.ttl)

    def port_order(self, ports: Sequence[int]) -> list[int]:
        if self.config.sequential_ports:
            return list(ports)
        # A list of at most 65535 ports is shuffled outright (the target stream
        # is not: it is never materialised).
        order = list(ports)
        random.Random(self.port_key).shuffle(order)
        return order

    def port_scan(self, up: Sequence[Target], alive: dict[str, tuple[bool, Reason, float | None]], started: float) -> None:
        by_address = {t.address: t for t in up}
        results: dict[str, list[PortResult]] = {t.address: [] for t in up}
        latencies: dict[str, float | None] = {t.address: alive[t.address][2] for t in up}
        timed_out: dict[str, bool] = {t.address: False for t in up}
        for scan_type in self.scan_types:
            if self.stop.is_set():
                break
            if scan_type is ScanType.CONNECT:
                self.connect_scan(up, results, latencies, timed_out)
            else:
                self.raw_scan(scan_type, up, results, latencies, timed_out)
        names = self.reverse_names(list(by_address))
        for address, t in by_address.items():
            ports = tuple(sort_ports(map(self.named, results[address])))
            _, reason, _ = alive[address]
            self.counts.up += 1
            self.counts.total += 1
            self.emit(t, HostStatus.UP, reason, latencies[address], ports, names, started, timed_out[address])

    def connect_scan(self, up, results, latencies, timed_out) -> None:  # type: ignore[no-untyped-def]
        from leadline.engines.connect import connect_scan

        ports = self.port_order(self.ports.tcp)
        total = len(ports) * len(up)
        task = TASK_NAMES[ScanType.CONNECT]
        self.sink.task_begin(task, time.time(), _scanning(up, len(ports)))
        t0 = time.monotonic()
        last = [0.0]

        def progress(done: int, _total: int) -> None:
            now = time.monotonic()
            if now - last[0] < 1.0 or not done:
                return
            last[0] = now
            pct = 100.0 * done / max(total, 1)
            rate = done / max(now - t0, 1e-6)
            remaining = (total - done) / rate if rate > 0 else 0.0
            wall = time.time()
            self.sink.task_progress(task, wall, pct, remaining, wall + remaining)

        def done(h) -> None:  # type: ignore[no-untyped-def]
            results[h.address].extend(h.ports)
            if h.latency is not None:
                latencies[h.address] = h.latency
            timed_out[h.address] = timed_out[h.address] or h.timed_out

        connect_scan([t.address for t in up], ports, self.config.timing, on_host_done=done, on_progress=progress, stop=self.stop)
        self.sink.task_end(task, time.time(), f"{total} total ports")

    def raw_scan(self, scan_type: ScanType, up, results, latencies, timed_out) -> None:  # type: ignore[no-untyped-def]
        """One raw TCP scan over a host group: a session per source address, driven by the raw engine."""
        from leadline.core.probes.base import ProbeContext
        from leadline.core.probes.registry import module_for
        from leadline.core.ratecontrol import RateController
        from leadline.core.session import HostDone, PortDecided, ScanSession
        from leadline.engines.procpool import usable_cores, worker_count
        from leadline.engines.raw import run_raw_scan, source_address_for
        from leadline.engines.rawsplit import split_raw_scan

        ports = self.port_order(self.ports.tcp)
        by_source: dict[tuple[str, int], list[str]] = {}
        for t in up:
            by_source.setdefault((source_address_for(t.address), t.family), []).append(t.address)
        task = TASK_NAMES[scan_type]
        total = len(ports) * len(up)
        decided = [0]
        t0 = time.monotonic()
        last = [0.0]
        self.sink.task_begin(task, time.time(), _scanning(up, len(ports)))

        service_name = self.services.names("tcp").get

        def on_event(event) -> None:  # type: ignore[no-untyped-def]
            if isinstance(event, PortDecided):
                v = event.verdict
                # Named here, while the workers scan, rather than all at once at the end.
                results[event.address].append(
                    PortResult(event.port, "tcp", v.state, v.reason, v.ttl, service_name(event.port),
                               _exchange_line(event.exchange, v))
                )
                decided[0] += 1
                now = time.monotonic()
                if now - last[0] >= 1.0:
                    last[0] = now
                    rate = decided[0] / max(now - t0, 1e-6)
                    remaining = (total - decided[0]) / rate if rate else 0.0
                    wall = time.time()
                    self.sink.task_progress(task, wall, 100.0 * decided[0] / max(total, 1), remaining, wall + remaining)
            elif isinstance(event, HostDone):
                if event.latency is not None:
                    latencies[event.address] = event.latency
            else:
                self.warn(f"{event.address}: {event.text}")

        for (source, family), addresses in by_source.items():
            if self.stop.is_set():
                break
            module = module_for(scan_type, self.config.scanflags)
            ctx = ProbeContext(source_address=source, secret=os.urandom(16), family=family, tcp_flags=self.config.scanflags)

            def make_session(ports: Sequence[int], timing: Timing, ctx: ProbeContext = ctx, addresses: list[str] = addresses) -> ScanSession:
                return ScanSession.for_group(
                    module, ctx, addresses, ports, timing, RateController.from_timing(timing), explain=self.config.explain
                )

            workers = 1
            if self.pcap is None and self.trace is None:  # those record one ordered conversation
                workers = worker_count(len(addresses), len(ports), self.config.timing, usable_cores())
            if workers > 1:
                split_raw_scan(make_session, ports, self.config.timing, workers, family=family, on_event=on_event, stop=self.stop)
            else:
                session = make_session(ports, self.config.timing)
                run_raw_scan(session, family=family, on_event=on_event, stop=self.stop, evidence=self.pcap)
        self.sink.task_end(task, time.time(), f"{total} total ports")

    # -- helpers -------------------------------------------------------
    def named(self, p: PortResult) -> PortResult:
        """Fill in the service name; keep the evidence only when --explain asked for it."""
        service = p.service if p.service is not None else self.services.names(p.protocol).get(p.port)
        evidence = p.evidence if self.config.explain else ()
        if service == p.service and evidence == p.evidence:
            return p
        # The constructor, not dataclasses.replace: this runs once per port, 65535 times for -p-.
        return PortResult(p.port, p.protocol, p.state, p.reason, p.reason_ttl, service, evidence)

    def reverse_names(self, addresses: list[str], listing: bool = False) -> dict[str, str | None]:
        if self.config.dns == "never" or not addresses:
            return {}
        self.sink.task_begin("Parallel DNS resolution of %d host%s." % (len(addresses), "s" if len(addresses) != 1 else ""), time.time())
        names = resolve.reverse_lookup_many(addresses)
        self.sink.task_end("Parallel DNS resolution of %d host%s." % (len(addresses), "s" if len(addresses) != 1 else ""), time.time())
        return names

    def emit(
        self,
        t: Target,
        status: HostStatus,
        reason: Reason,
        latency: float | None,
        ports: tuple[PortResult, ...],
        names: dict[str, str | None],
        started: float,
        timed_out: bool = False,
        *,
        mac: str | None = None,
        reason_ttl: int | None = None,
    ) -> None:
        if mac is None and reason_ttl is None:
            mac, reason_ttl = self.link_facts.pop(t.address, (None, None))
        if mac is None and status is HostStatus.UP and ports and self.raw_discovery_applies() and any(
            s is not ScanType.CONNECT for s in self.scan_types
        ):
            mac = neighbour_mac(t.address)  # as nmap does: a raw scan's replies came from this MAC
        hostnames: list[Hostname] = []
        if t.hostname:
            hostnames.append(Hostname(t.hostname, "user"))
        ptr = names.get(t.address)
        if ptr:
            hostnames.append(Hostname(ptr, "PTR"))
        self.sink.host(
            HostResult(
                address=t.address,
                family=t.family,
                status=status,
                status_reason=reason,
                hostnames=tuple(hostnames),
                latency=latency,
                ports=ports,
                start_time=started,
                end_time=time.time(),
                other_addresses=t.other_addresses,
                timed_out=timed_out,
                mac=mac,
                mac_vendor=vendor_for(mac) if mac else None,
                status_reason_ttl=reason_ttl,
            )
        )
