"""Host discovery: which hosts of a group are up, and why.

Policy as nmap's: as root over IPv4, raw probes (ARP alone for
directly connected Ethernet neighbours); as root over IPv6, neighbour
solicitation on the link and pings beyond it; otherwise connect() to the
discovery ports.  With -Pn every host is up, except that a raw port scan
still asks directly connected neighbours first (ARP; silence is down).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from leadline.model import Reason
from leadline.output.formatting import scanning_text
from leadline.pipeline.context import ScanContext
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord

__all__ = ["Discovery", "probes_per_host"]

_DEFAULT_CONNECT_PING_PORTS = (80, 443)
_DEFAULT_PROBE_COUNT = 4  # nmap's default set: echo, SYN 443, ACK 80, timestamp


def probes_per_host(plan: ScanPlan, *, neighbours: bool) -> int:
    """How many probes discovery sends each host: one ARP or ND request to ``neighbours``,
    else the -P probes (a TCP or UDP probe per port), nmap's default four when none were given."""
    if neighbours:
        return 1
    probes = plan.config.discovery_probes
    if not probes:
        return _DEFAULT_PROBE_COUNT
    return sum(len(probe.ports) if probe.kind in ("syn", "ack", "udp") else 1 for probe in probes)


def _by_address(records: Sequence[HostRecord]) -> dict[str, list[HostRecord]]:
    table: dict[str, list[HostRecord]] = {}
    for r in records:
        table.setdefault(r.address, []).append(r)
    return table


class Discovery:
    """Marks each record of a group up or down."""

    def wanted(self, plan: ScanPlan) -> bool:
        return not plan.config.list_only

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        plan = ctx.plan
        records = group.records
        if plan.config.skip_discovery:
            for r in records:
                r.mark(True, Reason.USER_SET)
            if plan.raw_port_scan and plan.arp_allowed:
                if plan.raw_discovery:
                    self._arp_neighbours(records, ctx)
                elif plan.neighbour_discovery:
                    self._nd(records, ctx, on_link_only=True)
            return
        for r in records:
            r.mark(False, Reason.NO_RESPONSE)
        if plan.raw_discovery:
            self._raw(records, ctx)
        elif plan.neighbour_discovery:
            self._nd(records, ctx, on_link_only=False)
        else:
            self._connect_ping(records, ctx)

    def _arp_neighbours(self, records: list[HostRecord], ctx: ScanContext) -> None:
        """-Pn with a raw scan: nmap still ARPs directly connected targets, and one that stays silent is down."""
        neighbours = [r for r in records if ctx.engines.arp_reaches(r.address)]
        for r in neighbours:
            r.mark(False, Reason.NO_RESPONSE)
        if neighbours:
            self._raw(neighbours, ctx)

    def _raw(self, records: list[HostRecord], ctx: ScanContext) -> None:
        plan = ctx.plan
        table = _by_address(records)
        addresses = list(table)
        neighbours = plan.arp_allowed and all(ctx.engines.arp_reaches(a) for a in addresses)
        task = "ARP Ping Scan" if neighbours else "Ping Scan"
        ctx.sink.task_begin(task, time.time(), scanning_text(addresses, probes_per_host(plan, neighbours=neighbours)))
        results = ctx.engines.raw_discover(addresses, plan.config.discovery_probes, plan.config.timing,
                                           arp=plan.arp_allowed, stop=ctx.stop, evidence=ctx.evidence)
        for result in results:
            for r in table.get(result.address, ()):
                r.mark(result.up, result.reason, result.latency, ttl=result.ttl, mac=result.mac)
        ctx.sink.task_end(task, time.time(), f"{len(records)} total hosts")

    def _nd(self, records: list[HostRecord], ctx: ScanContext, *, on_link_only: bool) -> None:
        """IPv6 as root.  With ``on_link_only`` (-Pn with a raw scan) only directly connected
        targets are solicited, as nmap does, and every target stays up."""
        plan = ctx.plan
        table = _by_address(records)
        addresses = list(table)
        if on_link_only:
            addresses = [a for a in addresses if ctx.engines.nd_reaches(a)]
        if not addresses:
            return
        neighbours = on_link_only or all(ctx.engines.nd_reaches(a) for a in addresses)
        task = "ND Ping Scan" if neighbours else "Ping Scan"
        ctx.sink.task_begin(task, time.time(), scanning_text(addresses, probes_per_host(plan, neighbours=neighbours)))
        results = ctx.engines.nd_discover(addresses, plan.config.discovery_probes, plan.config.timing,
                                          stop=ctx.stop, evidence=ctx.evidence)
        for result in results:
            if on_link_only and not result.up:
                continue
            for r in table.get(result.address, ()):
                r.mark(result.up, result.reason, result.latency, ttl=result.ttl, mac=result.mac)
        ctx.sink.task_end(task, time.time(), f"{len(addresses)} total hosts")

    def _connect_ping(self, records: list[HostRecord], ctx: ScanContext) -> None:
        """Without raw packets: a host is up if a discovery port accepts or refuses a connect."""
        ports: Sequence[int] = _DEFAULT_CONNECT_PING_PORTS
        for probe in ctx.plan.config.discovery_probes:
            if probe.kind in ("syn", "ack") and probe.ports:
                ports = probe.ports
        table = _by_address(records)
        ctx.sink.task_begin("Ping Scan", time.time())
        for result in ctx.engines.connect_ping(list(table), ports, ctx.plan.config.timing):
            for r in table.get(result.address, ()):
                r.mark(result.up, result.reason, result.latency)
        ctx.sink.task_end("Ping Scan", time.time(), f"{len(records)} total hosts")
