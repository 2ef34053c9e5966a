"""A host's record while phases work on it, and the group of hosts they work on together.

Each phase reads what earlier phases learned about a host and adds to
it; when the host leaves the pipeline its record is frozen into the
``HostResult`` every output reads.  Records are mutable on purpose and
never escape the pipeline: what leaves is the frozen result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from leadline.core.targets import Target
from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsResult,
    PortResult,
    Reason,
    ScriptResult,
    Trace,
)

__all__ = ["HostGroup", "HostRecord"]


@dataclass(slots=True)
class HostRecord:
    """What is known so far about one target."""

    target: Target
    status: HostStatus = HostStatus.UNKNOWN
    reason: Reason = Reason.NO_RESPONSE
    reason_ttl: int | None = None
    latency: float | None = None
    mac: str | None = None
    ptr: str | None = None
    ports: list[PortResult] = field(default_factory=list)
    timed_out: bool = False
    interrupted: bool = False  # the run stopped before every port of this host was decided
    distance: int | None = None
    uptime: float | None = None
    os: OsResult | None = None
    trace: Trace | None = None
    scripts: list[ScriptResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    through: str | None = None  # the zombie or FTP server the ports were scanned through

    @property
    def address(self) -> str:
        return self.target.address

    @property
    def up(self) -> bool:
        return self.status is HostStatus.UP

    def mark(self, up: bool, reason: Reason, latency: float | None = None, *,
             ttl: int | None = None, mac: str | None = None) -> None:
        """Discovery's verdict; a MAC or reply TTL it learned on the way is kept."""
        self.status = HostStatus.UP if up else HostStatus.DOWN
        self.reason = reason
        self.latency = latency
        if ttl is not None:
            self.reason_ttl = ttl
        if mac is not None:
            self.mac = mac

    def freeze(self, ports: tuple[PortResult, ...], started: float, mac_vendor: str | None) -> HostResult:
        target = self.target
        hostnames: tuple[Hostname, ...] = ()
        if target.hostname or self.ptr:
            named = [Hostname(target.hostname, "user")] if target.hostname else []
            hostnames = (*named, Hostname(self.ptr, "PTR")) if self.ptr else tuple(named)
        # Positional, in HostResult's field order (a test holds the two together): once per host
        # of a sweep, keywords cost half as much again.
        return HostResult(
            target.address, target.family, self.status, self.reason, self.reason_ttl, hostnames, self.latency,
            ports, self.mac, mac_vendor, started, time.time(), target.other_addresses, self.timed_out,
            self.distance, self.uptime, self.os, self.trace, tuple(self.scripts), tuple(self.warnings),
            self.interrupted, self.through,
        )


@dataclass
class HostGroup:
    """Hosts that go through the phases together, in target order."""

    records: list[HostRecord]
    started: float = field(default_factory=time.time)

    @classmethod
    def of(cls, targets: list[Target]) -> HostGroup:
        return cls([HostRecord(t) for t in targets])

    def up(self) -> list[HostRecord]:
        return [r for r in self.records if r.up]

    def down(self) -> list[HostRecord]:
        return [r for r in self.records if not r.up]

    def by_address(self) -> dict[str, list[HostRecord]]:
        """Records per address: a target given twice is scanned once and reported twice."""
        table: dict[str, list[HostRecord]] = {}
        for r in self.records:
            table.setdefault(r.address, []).append(r)
        return table
