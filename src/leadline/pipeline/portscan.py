"""Port scanning: one phase per scan type, over the group's hosts that are up.

Which engine carries the probes comes from the scan type's row in
``SCAN_KINDS``: the kernel's connect() or our own packets through a
probe module.  Either way each decided port lands in its host's record
at once (open ports are also told to the sinks as found, for nmap's -v
"Discovered open port" lines), and the task reports its progress.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence

from leadline.config import ScanConfig, Timing
from leadline.core.probes.udp import UdpScan
from leadline.core.probes.base import ProbeContext, ProbeModule
from leadline.core.session import Event, HostDone, PortDecided, ScanSession
from leadline.core.targets import in_share
from leadline.core.idle import PortFound
from leadline.model import PortResult, PortState, Reason
from leadline.pipeline.context import ScanContext, TaskProgress, scanning_hosts
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord
from leadline.errors import UsageError
from leadline.scantypes import Engine, ScanType, probe_module

__all__ = ["PortScan", "exchange_line", "port_order"]


_PROGRESS_EVERY = 0xFF
_FRONT_PORTS = 100  # the most common ports, probed first in a shuffled scan


def port_order(ports: Sequence[int], sequential: bool, key: int, common: Sequence[int] = ()) -> list[int]:
    """The order ports are probed in: as given with -r, else shuffled (the same way for every group).

    As nmap does, the most ``common`` ports go first, shuffled among
    themselves: they are the likeliest to answer, and an early answer
    gives a host's RTT, which sets how long silence is waited for.
    """
    order = list(ports)
    if sequential:
        return order
    random.Random(key).shuffle(order)
    front = set(common)
    if front:
        order = [p for p in order if p in front] + [p for p in order if p not in front]
    return order


def exchange_line(exchange: tuple[str, ...]) -> tuple[str, ...]:
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


def _unique_up(group: HostGroup) -> dict[str, HostRecord]:
    """The up hosts by address; a target given twice is scanned (and reported) once."""
    return {r.address: r for r in group.up()}


class PortScan:
    """The port scan of one scan type."""

    def __init__(self, scan_type: ScanType) -> None:
        self.scan_type = scan_type
        self.kind = scan_type.kind

    def wanted(self, plan: ScanPlan) -> bool:
        return self.scan_type in plan.scan_types

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        hosts = _unique_up(group)
        if not hosts or ctx.stopped:
            return
        common = ctx.services.top(_FRONT_PORTS, self.kind.protocol)
        ports = port_order(ctx.plan.ports_for(self.scan_type), ctx.plan.config.sequential_ports, ctx.port_key, common)
        total = len(ports) * len(hosts)
        ctx.sink.task_begin(self.kind.task, time.time(), scanning_hosts(list(hosts.values()), len(ports)))
        progress = TaskProgress(ctx.sink, self.kind.task, total)
        if self.kind.engine is Engine.CONNECT:
            self._connect(hosts, ports, ctx, progress)
        elif self.kind.engine is Engine.IDLE:
            self._idle(hosts, ports, ctx, progress)
        elif self.kind.engine is Engine.BOUNCE:
            self._bounce(hosts, ports, ctx, progress)
        else:
            self._raw(hosts, ports, ctx, progress)
        ctx.sink.task_end(self.kind.task, time.time(), f"{total} total ports")

    def _connect(self, hosts: dict[str, HostRecord], ports: list[int], ctx: ScanContext, progress: TaskProgress) -> None:
        from leadline.engines.connect import HostPortResults, Labels

        def done(result: HostPortResults) -> None:
            record = hosts[result.address]
            record.ports.extend(result.ports)
            if result.latency is not None:
                record.latency = result.latency
            record.timed_out = record.timed_out or result.timed_out
            for port in result.ports:
                if port.state is PortState.OPEN:
                    ctx.sink.port_found(result.address, port)

        # Named, and with evidence only under --explain, as the engine builds them: emitting then
        # keeps each port's result as it is instead of building it again.
        labels = Labels(ctx.services.names("tcp"), ctx.plan.config.explain)
        ctx.engines.connect_scan(list(hosts), ports, ctx.plan.config.timing, on_host_done=done,
                                 on_progress=lambda finished, _total: progress.update(finished), stop=ctx.stop,
                                 labels=labels)

    def _idle(self, hosts: dict[str, HostRecord], ports: list[int], ctx: ScanContext, progress: TaskProgress) -> None:
        """Through the zombie of -sI: open where its counter moved, closed|filtered elsewhere (nmap's reasons)."""
        zombie = ctx.plan.config.idle_zombie or ""
        names = ctx.services.names("tcp")
        line: list[str] = []
        decided = 0

        def on_zombie(message: str) -> None:
            line.append(message)
            for record in hosts.values():
                record.through = message

        def done(address: str, found: list[PortFound]) -> None:
            nonlocal decided
            record = hosts[address]
            for item in found:
                state, reason = ((PortState.OPEN, Reason.IPID_CHANGE) if item.open
                                 else (PortState.CLOSED_FILTERED, Reason.NO_IPID_CHANGE))
                port = PortResult(item.port, "tcp", state, reason, None, names.get(item.port))
                record.ports.append(port)
                if item.open:
                    ctx.sink.port_found(address, port)
            decided += len(found)
            progress.update(decided)

        ctx.engines.idle_scan(zombie, list(hosts), ports, ctx.plan.config.timing, on_zombie=on_zombie,
                              on_host_done=done, stop=ctx.stop)

    def _bounce(self, hosts: dict[str, HostRecord], ports: list[int], ctx: ScanContext, progress: TaskProgress) -> None:
        """Through the FTP server of -b.  vsftpd ends the session on a PORT below 1024, so those are skipped.

        The reason is nmap's for every bounced port, "no-response": the target never answered us.
        """
        server = ctx.plan.config.bounce_server or ""
        allowed = [p for p in ports if p >= 1024]
        if len(allowed) < len(ports):
            ctx.warn("Your FTP bounce server doesn't allow privileged ports, skipping them.")
        if not allowed:
            raise UsageError("And you didn't want to scan any unprivileged ports.  Giving up.")
        names = ctx.services.names("tcp")
        states = {"open": PortState.OPEN, "closed": PortState.CLOSED, "filtered": PortState.FILTERED}
        decided = 0
        for address, record in hosts.items():
            if ctx.stopped:
                break
            record.through = f"FTP bounce scan through {server.rpartition('@')[2]}"
            for verdict in ctx.engines.bounce_scan(server, address, allowed, ctx.plan.config.timing, stop=ctx.stop):
                port = PortResult(verdict.port, "tcp", states[verdict.state], Reason.NO_RESPONSE, None,
                                  names.get(verdict.port))
                record.ports.append(port)
                if port.state is PortState.OPEN:
                    ctx.sink.port_found(address, port)
            decided += len(allowed)
            progress.update(decided)

    def _raw(self, hosts: dict[str, HostRecord], ports: list[int], ctx: ScanContext, progress: TaskProgress) -> None:
        """A session per source address and family, each driven by the raw engine."""
        by_source: dict[tuple[str, int], list[str]] = {}
        for address, record in hosts.items():
            key = (ctx.engines.source_address_for(address), record.target.family)
            by_source.setdefault(key, []).append(address)
        on_event = _RawEvents(hosts, self.kind.protocol, ctx, progress)
        config = ctx.plan.config
        udp = self.scan_type is ScanType.UDP
        if udp and config.source_pool:
            by_source = _pool_lanes(by_source, config.source_pool)
        for (source, family), addresses in by_source.items():
            if ctx.stopped:
                break
            module = probe_module(self.scan_type, config.scanflags)
            if isinstance(module, UdpScan):
                _configure_udp(module, config)
            secret = os.urandom(16)
            contexts = [ProbeContext(source_address=a, secret=secret, family=family, tcp_flags=config.scanflags)
                        for a in source.split(",")]
            seeds = {a: latency for a in addresses if (latency := hosts[a].latency) is not None}

            def make_session(ports: Sequence[int], timing: Timing, host_share: tuple[int, int] | None = None, *,
                             contexts: list[ProbeContext] = contexts, addresses: list[str] = addresses,
                             module: ProbeModule = module, seeds: dict[str, float] = seeds) -> ScanSession:
                if host_share is not None:  # one worker's share of the hosts (engines/rawsplit.py)
                    addresses = [a for a in addresses if in_share(a, host_share)]
                return _session(module, contexts, addresses, ports, timing, config, udp, seeds)

            ctx.engines.raw_scan(make_session, len(addresses), ports, config.timing, family=family,
                                 on_event=on_event, stop=ctx.stop, evidence=ctx.evidence, split=not udp)


def _pool_lanes(by_source: dict[tuple[str, int], list[str]], pool: Sequence[str]) -> dict[tuple[str, int], list[str]]:
    """--source-pool: one session per family whose lanes are the pool's addresses of that family."""
    lanes: dict[tuple[str, int], list[str]] = {}
    for (source, family), addresses in by_source.items():
        mine = [a for a in pool if (":" in a) == (family == 6)]
        key = (",".join(mine), family) if mine else (source, family)
        lanes.setdefault(key, []).extend(addresses)
    return lanes


def _session(module: ProbeModule, contexts: list[ProbeContext], addresses: list[str], ports: Sequence[int],
             timing: Timing, config: ScanConfig, udp: bool, seeds: dict[str, float]) -> ScanSession:
    """The UDP session with its ICMP-budget rounds, or the plain raw session (TCP; UDP under --defeat-icmp-ratelimit)."""
    from leadline.core.ratecontrol import RateController

    if isinstance(module, UdpScan) and not config.defeat_icmp_ratelimit:
        from leadline.core.udpsession import DEFAULT_UDP_RATE, UdpSession

        rate = RateController(min_rate=timing.min_rate, max_rate=_max_rate(timing),
                              initial_rate=timing.min_rate or min(DEFAULT_UDP_RATE, _max_rate(timing) or math.inf),
                              adaptive=False)
        return UdpSession(module, contexts, addresses, ports, timing, rate, explain=config.explain)
    if udp:  # nmap's --defeat-icmp-ratelimit: no slowing down for missing errors
        rate = RateController(min_rate=timing.min_rate, max_rate=_max_rate(timing), adaptive=False,
                              initial_rate=timing.min_rate or None)
    else:
        rate = RateController.from_timing(timing)
    return ScanSession.for_group(module, contexts[0], addresses, ports, timing, rate, explain=config.explain,
                                 rtt_seeds=seeds)


def _max_rate(timing: Timing) -> float | None:
    caps = [c for c in (timing.max_rate, 1.0 / timing.scan_delay if timing.scan_delay > 0 else None) if c]
    return min(caps) if caps else None


def _configure_udp(module: UdpScan, config: ScanConfig) -> None:
    """The payloads each port gets, and what silence means (--defeat-icmp-ratelimit: closed|filtered)."""
    from leadline.pipeline.udpsetup import udp_payload_table

    module.payloads = udp_payload_table(config)
    if config.defeat_icmp_ratelimit:
        module.silent = PortState.CLOSED_FILTERED


class _RawEvents:
    """Turns a raw session's events into records: ports, latencies and warnings."""

    def __init__(self, hosts: dict[str, HostRecord], protocol: str, ctx: ScanContext, progress: TaskProgress) -> None:
        self.hosts = hosts
        self.protocol = protocol
        self.ctx = ctx
        self.progress = progress
        self.decided = 0
        # Named here, while the workers scan, rather than all at once at the end.
        self.service_name = ctx.services.names(protocol).get

    def __call__(self, event: Event) -> None:
        if isinstance(event, PortDecided):
            v = event.verdict
            exchange = event.exchange  # empty unless --explain: no call for it then (once per port)
            port = PortResult(event.port, self.protocol, v.state, v.reason, v.ttl, self.service_name(event.port),
                              exchange_line(exchange) if exchange else ())
            self.hosts[event.address].ports.append(port)
            if v.state is PortState.OPEN:
                self.ctx.sink.port_found(event.address, port)
            self.decided += 1
            if not self.decided & _PROGRESS_EVERY:  # the clock is read once per 256 ports, not per port
                self.progress.update(self.decided)
        elif isinstance(event, HostDone):
            if event.latency is not None:
                self.hosts[event.address].latency = event.latency
        else:
            self.ctx.warn(f"{event.address}: {event.text}")
            record = self.hosts.get(event.address)
            if record is not None and event.text not in record.warnings:
                record.warnings.append(event.text)
