"""The pipeline's one door to I/O: what a phase may ask of the network and the system.

Phases decide; they never open a socket or read a kernel table
themselves.  They ask an ``Engines`` object, so the whole pipeline runs
over the real kernel (``SystemEngines``) or over a scripted network in
tests (``tests/unit/fakeengines.py``) with the same phase code.  Each
method is a thin call into one engine module under ``leadline.engines``;
modules are imported on first use so a list scan never loads the packet
engines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from leadline.config import DiscoveryProbe, Timing

if TYPE_CHECKING:
    from leadline.core.evidence import PacketEvidence
    from leadline.core.session import Event, MakeSession
    from leadline.core.tracesession import TraceSession
    from leadline.detect.service.probes import ProbeDatabase
    from leadline.engines.service import OnResult, ServiceOptions, ServiceTarget
    from leadline.detect.scripts.base import ScriptIO
    from leadline.engines.connect import HostPortResults, Labels, PingResult
    from leadline.engines.discovery import DiscoveryResult
    from leadline.core.osprobes import OsPlan, OsProbe
    from leadline.engines.osprobe import RoundTraffic
    from leadline.engines.routes import RouteTable
    from leadline.core.idle import PortFound
    from leadline.core.ftpbounce import PortVerdict
    from leadline.core.idle import PortFound

__all__ = ["Engines", "SystemEngines"]


class Engines(Protocol):
    """Everything the phases need from the outside world."""

    def raw_available(self) -> bool:
        """Whether raw packet engines can run at all (root is checked separately)."""

    def arp_reaches(self, address: str) -> bool:
        """IPv4: ``address`` is an Ethernet neighbour, so ARP decides whether it is up."""

    def nd_reaches(self, address: str) -> bool:
        """IPv6: ``address`` is an on-link Ethernet neighbour, so neighbour discovery decides."""

    def source_address_for(self, address: str) -> str: ...

    def neighbour_mac(self, address: str) -> str | None:
        """The MAC the kernel resolved for a directly connected ``address``, if any."""

    def raw_discover(self, addresses: Iterable[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                     arp: bool, stop: threading.Event, evidence: PacketEvidence | None) -> Iterator[DiscoveryResult]: ...

    def nd_discover(self, addresses: Sequence[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                    stop: threading.Event, evidence: PacketEvidence | None) -> Iterator[DiscoveryResult]: ...

    def connect_ping(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing) -> Iterator[PingResult]: ...

    def connect_scan(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing, *,
                     on_host_done: Callable[[HostPortResults], None], on_progress: Callable[[int, int], None],
                     stop: threading.Event, labels: Labels | None = None) -> None:
        """Connect-scan every host of a group; ``labels``: the ports' service names and whether evidence lines."""

    def raw_scan(self, make_session: MakeSession, hosts: int, ports: Sequence[int], timing: Timing, *, family: int,
                 on_event: Callable[[Event], None], stop: threading.Event, evidence: PacketEvidence | None,
                 split: bool = True) -> None:
        """Run the session ``make_session(ports, timing)`` builds, in one process or split over cores.

        ``split=False`` keeps it in one process: a UDP scan's per-host ICMP budgets are one process's to track."""

    def idle_scan(self, zombie: str, targets: Sequence[str], ports: Sequence[int], timing: Timing, *,
                  on_zombie: Callable[[str], None], on_host_done: Callable[[str, list[PortFound]], None],
                  stop: threading.Event) -> None:
        """Check the zombie (LeadlineError in one line when it cannot serve), then scan each target through it."""

    def bounce_scan(self, server: str, target: str, ports: Sequence[int], timing: Timing, *,
                    stop: threading.Event) -> list[PortVerdict]:
        """Each port of ``target`` through the FTP server of -b; LeadlineError in one line when it refuses."""

    def reverse_names(self, addresses: Sequence[str]) -> dict[str, str | None]: ...

    def resolve_name(self, name: str, family: int) -> list[str]: ...

    def detect_services(self, db: ProbeDatabase, targets: Sequence[ServiceTarget], options: ServiceOptions, *,
                        on_result: OnResult, stop: threading.Event, log: Callable[[str], None] | None,
                        trace: Callable[[str], None] | None) -> None:
        """Version detection's conversations with ``targets``; ``on_result`` hears each port's answer."""

    def os_round(self, rounds: Sequence[tuple[OsPlan, Sequence[OsProbe]]], *, wait: float,
                 stop: threading.Event, evidence: PacketEvidence | None) -> list[RoundTraffic]:
        """One round of OS detection probes to every host at once, and what each host sent back."""

    def script_io(self, address: str, deadline: float) -> ScriptIO:
        """Connections for one script run against ``address``, each call bounded by ``deadline`` (monotonic)."""

    def trace_routes(self, session: TraceSession, family: int, *, stop: threading.Event,
                     evidence: PacketEvidence | None) -> None:
        """Run a traceroute session to its end; its deadlines are on ``time.monotonic``'s clock."""


class SystemEngines:
    """The real kernel: sockets, packet capture, routing tables and the resolver."""

    def __init__(self, *, reply_share: tuple[int, int] | None = None) -> None:
        self.reply_share = reply_share  # (r, K): every target is r mod K, so captures drop other sources
        self._routes4: RouteTable | None = None
        self._routes6: object | None = None

    def raw_available(self) -> bool:
        try:
            import leadline.engines.raw  # noqa: F401
        except ImportError:
            return False
        return True

    def _ipv4_routes(self) -> RouteTable:
        routes = self._routes4  # asked once or twice per host of a big scan: no import on the way
        if routes is None:
            from leadline.engines.routes import RouteTable

            routes = self._routes4 = RouteTable.load()
        return routes

    def arp_reaches(self, address: str) -> bool:
        return self._ipv4_routes().arp_reaches(address)

    def nd_reaches(self, address: str) -> bool:
        from leadline.engines.routes import Ipv6Routes

        if not isinstance(self._routes6, Ipv6Routes):
            self._routes6 = Ipv6Routes.load()
        return self._routes6.nd_reaches(address)

    def source_address_for(self, address: str) -> str:
        """Asked of the kernel once per IPv4 route (the route table caches it), else per address."""
        from leadline.engines.routes import source_address_for

        if ":" not in address:
            path = self._ipv4_routes().path_for(address)
            if path is not None:
                return path.source
        return source_address_for(address)

    def neighbour_mac(self, address: str) -> str | None:
        from leadline.engines.neighbours import neighbour_mac

        return neighbour_mac(address)

    def raw_discover(self, addresses: Iterable[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                     arp: bool, stop: threading.Event, evidence: PacketEvidence | None) -> Iterator[DiscoveryResult]:
        from leadline.engines.discovery import raw_discover
        from leadline.engines.discoverysplit import discover_in_worker, worth_a_worker
        from leadline.engines.procpool import usable_cores

        if evidence is None and self.reply_share is None:  # evidence is one conversation; a cluster worker is one share
            split, addresses = worth_a_worker(addresses, usable_cores())
            if split:
                return discover_in_worker(addresses, probes, timing, arp=arp, stop=stop)
        return raw_discover(addresses, probes, timing, arp=arp, stop=stop, evidence=evidence,
                            source_share=self.reply_share)

    def nd_discover(self, addresses: Sequence[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                    stop: threading.Event, evidence: PacketEvidence | None) -> Iterator[DiscoveryResult]:
        from leadline.engines.ndp import ndp_discover

        return ndp_discover(addresses, timing, probes=tuple(probes), stop=stop, evidence=evidence)

    def connect_ping(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing) -> Iterator[PingResult]:
        from leadline.engines.connect import connect_ping

        return connect_ping(addresses, ports, timing)

    def connect_scan(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing, *,
                     on_host_done: Callable[[HostPortResults], None], on_progress: Callable[[int, int], None],
                     stop: threading.Event, labels: Labels | None = None) -> None:
        from leadline.engines.connect import connect_scan

        connect_scan(addresses, ports, timing, on_host_done=on_host_done, on_progress=on_progress, stop=stop,
                     labels=labels)

    def raw_scan(self, make_session: MakeSession, hosts: int, ports: Sequence[int], timing: Timing, *, family: int,
                 on_event: Callable[[Event], None], stop: threading.Event, evidence: PacketEvidence | None,
                 split: bool = True) -> None:
        from leadline.engines.procpool import split_plan, usable_cores
        from leadline.engines.raw import run_raw_scan
        from leadline.engines.rawsplit import split_raw_scan

        workers, by_hosts = 1, False
        if evidence is None and split:  # a pcap or a packet trace records one ordered conversation
            workers, by_hosts = split_plan(hosts, len(ports), timing, usable_cores(), by_hosts_allowed=family == 4)
        if workers > 1:
            split_raw_scan(make_session, ports, timing, workers, family=family, on_event=on_event, stop=stop,
                           by_hosts=by_hosts)
        else:
            run_raw_scan(make_session(ports, timing), family=family, on_event=on_event, stop=stop, evidence=evidence)

    def idle_scan(self, zombie: str, targets: Sequence[str], ports: Sequence[int], timing: Timing, *,
                  on_zombie: Callable[[str], None], on_host_done: Callable[[str, list[PortFound]], None],
                  stop: threading.Event) -> None:
        from leadline.engines.idle import IdleEngine, parse_zombie

        where = parse_zombie(zombie)
        engine = IdleEngine(where, self.source_address_for(where.address),
                            timeout=max(timing.initial_rtt_timeout, 0.5))
        try:
            on_zombie(engine.check(targets[0] if targets else None).message)
            for target in targets:
                if stop.is_set():
                    break
                on_host_done(target, engine.scan(target, ports, max_group=timing.max_parallelism or 100,
                                                 min_group=max(4, timing.min_parallelism), stop=stop.is_set))
        finally:
            engine.close()

    def bounce_scan(self, server: str, target: str, ports: Sequence[int], timing: Timing, *,
                    stop: threading.Event) -> list[PortVerdict]:
        from leadline.core.ftpbounce import BounceRefused, parse_server
        from leadline.engines.ftpbounce import bounce_ports
        from leadline.errors import LeadlineError

        try:
            user, password, host, port = parse_server(server)
        except BounceRefused as refused:
            raise LeadlineError(str(refused)) from None
        address = self.resolve_name(host, 4)
        if not address:
            raise LeadlineError(f"Failed to resolve FTP bounce proxy hostname/IP: {host}")
        deadline = max(1.0, min(timing.max_rtt_timeout, 2.0))
        return bounce_ports((address[0], port), user, password, target, ports, parallel=8, deadline=deadline,
                            stop=stop.is_set)

    def reverse_names(self, addresses: Sequence[str]) -> dict[str, str | None]:
        from leadline.engines.resolve import reverse_lookup_many

        return reverse_lookup_many(addresses)

    def resolve_name(self, name: str, family: int) -> list[str]:
        from leadline.engines.resolve import resolve_name

        return resolve_name(name, family)

    def detect_services(self, db: ProbeDatabase, targets: Sequence[ServiceTarget], options: ServiceOptions, *,
                        on_result: OnResult, stop: threading.Event, log: Callable[[str], None] | None,
                        trace: Callable[[str], None] | None) -> None:
        from leadline.engines.service import detect_services

        detect_services(db, targets, options, on_result=on_result, stop=stop, log=log, trace=trace)

    def script_io(self, address: str, deadline: float) -> ScriptIO:
        from leadline.engines.scriptio import SocketScriptIO

        return SocketScriptIO(address, deadline)

    def trace_routes(self, session: TraceSession, family: int, *, stop: threading.Event,
                     evidence: PacketEvidence | None) -> None:
        from leadline.engines.trace import run_trace

        run_trace(session, family, stop=stop, evidence=evidence)

    def os_round(self, rounds: Sequence[tuple[OsPlan, Sequence[OsProbe]]], *, wait: float,
                 stop: threading.Event, evidence: PacketEvidence | None) -> list[RoundTraffic]:
        from leadline.engines.osprobe import run_os_round

        return run_os_round(rounds, wait=wait, stop=stop, evidence=evidence)
