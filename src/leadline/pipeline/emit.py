"""Where a host leaves the pipeline: its record frozen into a HostResult and handed to the sinks."""

from __future__ import annotations

from dataclasses import dataclass

from leadline.detect.oui import vendor_for
from leadline.model import HostResult, HostStatus, PortResult
from leadline.output.formatting import sort_ports
from leadline.pipeline.context import ScanContext
from leadline.pipeline.record import HostRecord

__all__ = ["Counts", "Emitter"]


@dataclass
class Counts:
    up: int = 0
    down: int = 0
    total: int = 0


class Emitter:
    """Freezes records and writes them, counting hosts up, down and in all."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.counts = Counts()
        self.explain = ctx.plan.config.explain
        # As nmap: a raw scan's replies came from a neighbour, so its MAC is reported (constant for the run).
        self.mac_of_neighbours = ctx.plan.raw_discovery and ctx.plan.raw_port_scan

    def emit(self, record: HostRecord, started: float) -> None:
        """Write one host, and count it with the hosts the sinks were handed.

        An interrupt never cuts a host event short (the CLI's sinks hold it
        back until every sink has the host, then raise it), so a host handed
        over is in every file, and the run's statistics count it even when
        the interrupt surfaces as the call returns."""
        ctx = self.ctx
        ports = tuple(sort_ports(self._named(record.ports)))
        if (record.mac is None and self.mac_of_neighbours and ports and record.status is HostStatus.UP
                and ctx.engines.arp_reaches(record.address)):
            record.mac = ctx.engines.neighbour_mac(record.address)
        result = record.freeze(ports, started, vendor_for(record.mac) if record.mac else None)
        try:
            ctx.sink.host(result)
        finally:
            self.counts.total += 1
            if record.status is HostStatus.UP:
                self.counts.up += 1
            elif record.status is HostStatus.DOWN:
                self.counts.down += 1

    def replay(self, result: HostResult) -> None:
        """A host frozen elsewhere (--resume's checkpoint, a cluster worker): written and counted as if found here."""
        try:
            self.ctx.sink.host(result)
        finally:
            self.counts.total += 1
            if result.status is HostStatus.UP:
                self.counts.up += 1
            elif result.status is HostStatus.DOWN:
                self.counts.down += 1

    def flush(self) -> None:
        """A batch of hosts is written: the output files get what they hold (see output/held.py)."""
        self.ctx.sink.flush()

    def listed(self, addresses: list[str]) -> None:
        """A batch of -sL addresses with no names."""
        if addresses:
            try:
                self.ctx.sink.listed(addresses)
            finally:
                self.counts.total += len(addresses)

    def _named(self, ports: list[PortResult]) -> list[PortResult]:
        """Fill in service names; keep the evidence only when --explain asked for it.

        One loop, not a call per port: a -p- host has 65,535 of them, and
        the engines mostly hand them over named already.
        """
        explain = self.explain
        names_for = self.ctx.services.names
        tables: dict[str, dict[int, str]] = {}
        named = []
        for p in ports:
            service = p.service
            if service is None:
                table = tables.get(p.protocol)
                if table is None:
                    table = tables[p.protocol] = names_for(p.protocol)
                service = table.get(p.port)
            if service is p.service and (explain or not p.evidence):
                named.append(p)
            else:
                # The constructor, not dataclasses.replace: this can run once per port.
                named.append(PortResult(p.port, p.protocol, p.state, p.reason, p.reason_ttl, service,
                                        p.evidence if explain else (), p.detail, p.scripts))
        return named
