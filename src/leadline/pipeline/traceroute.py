"""The "Traceroute" phase (--traceroute, -A): the route to each host that is up, after the scan.

Each host is traced with the kind of probe that got an answer from it
during the scan, as nmap chooses: a SYN to an open TCP port, else to a
closed one, else a UDP datagram to a closed UDP port, else an ICMP echo
request.  The countdown starts at the distance its answers' TTL implies.
A host on our own link gets one hop and no probe, as in nmap.  The hop
cache lives as long as the phase (the whole scan), so a later host group
reuses the hops an earlier one found.  Hop names come from reverse DNS
unless -n.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from leadline.core.traceprobe import TraceMethod, distance_from_ttl
from leadline.core.tracesession import HopCache, TraceOptions, TraceResult, TraceSession, TraceTarget
from leadline.errors import PrivilegeError
from leadline.model import PortState, Reason, Trace, TraceHop
from leadline.pipeline.context import ScanContext
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord

__all__ = ["Traceroute", "trace_method", "trace_options"]

TASK = "Traceroute"


def trace_method(record: HostRecord) -> tuple[TraceMethod, int | None]:
    """The probe to trace ``record`` with, and the TTL its answer to that probe arrived with."""
    for protocol, state in (("tcp", PortState.OPEN), ("tcp", PortState.CLOSED), ("udp", PortState.CLOSED)):
        ports = sorted((p for p in record.ports if p.protocol == protocol and p.state is state), key=lambda p: p.port)
        if ports:
            return TraceMethod(protocol, ports[0].port), ports[0].reason_ttl or record.reason_ttl
    return TraceMethod("icmp"), record.reason_ttl


def trace_options(plan: ScanPlan) -> TraceOptions:
    """nmap's limits (two resends, one second at most), tightened by the timing options."""
    t = plan.config.timing
    return TraceOptions(retries=min(2, t.max_retries), max_in_flight=t.max_parallelism or 32,
                        min_timeout=t.min_rtt_timeout, max_timeout=min(1.0, t.max_rtt_timeout),
                        scan_delay=t.scan_delay)


class Traceroute:
    """Routes to the group's hosts; one hop cache for the whole scan."""

    runs_after_ping_scan = True  # -sn --traceroute traces too, as nmap does

    def __init__(self) -> None:
        self.cache = HopCache()

    def wanted(self, plan: ScanPlan) -> bool:
        config = plan.config
        if not config.wants_traceroute or config.list_only:
            return False
        if not (plan.privileged and plan.raw_available):
            if not config.traceroute:
                return False  # -A without root leaves traceroute out, as nmap's does
            raise PrivilegeError("Traceroute has to be run as root")
        return True

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        records = [r for r in {r.address: r for r in group.up()}.values()
                   if not r.timed_out and r.reason is not Reason.LOCALHOST]
        if not records or ctx.stopped:
            return
        family = records[0].target.family
        remote = []
        for r in records:
            direct = ctx.engines.nd_reaches(r.address) if family == 6 else ctx.engines.arp_reaches(r.address)
            if direct:
                r.trace = Trace(None, None, (TraceHop(1, r.address, r.latency),))
                r.distance = 1
            else:
                remote.append(r)
        if remote:
            self._trace(remote, family, group, ctx)
        self._name_hops(records, ctx)
        self.cache.trim()

    def _trace(self, records: list[HostRecord], family: int, group: HostGroup, ctx: ScanContext) -> None:
        config = ctx.plan.config
        deadline = None
        if config.timing.host_timeout is not None:
            deadline = time.monotonic() + group.started + config.timing.host_timeout - time.time()
        targets, methods = [], {}
        for r in records:
            method, ttl = trace_method(r)
            methods[r.address] = method
            targets.append(TraceTarget(r.address, ctx.engines.source_address_for(r.address), method,
                                       distance_from_ttl(ttl) if ttl else None, r.latency, deadline))
        session = TraceSession(targets, os.urandom(16), family, trace_options(ctx.plan), self.cache)
        ctx.sink.task_begin(TASK, time.time())
        ctx.engines.trace_routes(session, family, stop=ctx.stop, evidence=ctx.evidence)
        ctx.sink.task_end(TASK, time.time())
        for r in records:
            _apply(r, methods[r.address], session.result(r.address))

    def _name_hops(self, records: list[HostRecord], ctx: ScanContext) -> None:
        """Reverse names of the hops (the targets' own are looked up with the hosts')."""
        if ctx.plan.config.dns == "never" or ctx.stopped:
            return
        wanted = {h.address for r in records if r.trace for h in r.trace.hops
                  if h.address is not None and h.address != r.address}
        if not wanted:
            return
        task = "Parallel DNS resolution of %d host%s." % (len(wanted), "s" if len(wanted) != 1 else "")
        ctx.sink.task_begin(task, time.time())
        names = ctx.engines.reverse_names(sorted(wanted))
        ctx.sink.task_end(task, time.time())
        for r in records:
            if r.trace is not None:
                hops = tuple(TraceHop(h.ttl, h.address, h.rtt, names.get(h.address) if h.address else None)
                             for h in r.trace.hops)
                r.trace = Trace(r.trace.protocol, r.trace.port, hops, r.trace.shared_with, r.trace.shared_hops)


def _apply(record: HostRecord, method: TraceMethod, result: TraceResult) -> None:
    if result.timed_out:
        record.timed_out = True
        return
    record.trace = Trace(method.protocol, method.port, result.hops, result.shared_with, result.shared_hops)
    if result.distance is not None:
        record.distance = result.distance
        if record.os is not None and record.os.fingerprint:
            # One distance in the report: the OS fingerprint's SCAN line says the trace's, as nmap's (DC=T)
            from leadline.detect.os.printed import with_distance

            record.os = replace(record.os, fingerprint=with_distance(record.os.fingerprint, result.distance, "T"))
