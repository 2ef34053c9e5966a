"""What a scan will do, decided once before any packet is sent.

The plan turns a ``ScanConfig`` and our privileges into facts the phases
read: which scan types run (nmap's default for our privileges when none
was asked for), which ports each protocol covers, whether discovery uses
raw packets, and how many hosts make a group.  A usage or privilege
error surfaces here, before any output begins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from leadline.config import ScanConfig
from leadline.core.ports import PortList, select_ports
from leadline.errors import PrivilegeError, UsageError
from leadline.scantypes import Engine, ScanType
from leadline.services import ServiceTable

__all__ = ["ScanPlan", "effective_scan_types", "is_privileged"]

# Hosts scanned together.  Connect scans keep many sockets per host in
# flight, so groups stay modest; discovery-only sweeps take more at once.
PORT_SCAN_GROUP = 64
RAW_SCAN_GROUP_MAX = 16384
RAW_SCAN_RESULTS_PER_GROUP = 262144  # port results held before a group's hosts are written
DISCOVERY_GROUP = 1024


def is_privileged(config: ScanConfig) -> bool:
    """Raw sockets are ours if we are root, unless --unprivileged says to act as if not."""
    if config.privileged is not None:
        return config.privileged
    return os.geteuid() == 0


def effective_scan_types(config: ScanConfig, privileged: bool, raw_available: bool) -> tuple[ScanType, ...]:
    """What will run: the requested types, or nmap's default for our privileges."""
    if config.ping_only or config.list_only:
        return ()
    if config.scan_types:
        wanted = config.scan_types
    elif privileged and raw_available:
        wanted = (ScanType.SYN,)
    else:
        wanted = (ScanType.CONNECT,)
    for t in wanted:
        if not t.kind.implemented:
            raise UsageError(f"the {t.kind.task.replace(' Scan', ' scan')} ({t.flag}) is not implemented yet")
    needs_root = [t for t in wanted if t.needs_root]
    if needs_root and not privileged:
        if os.geteuid() == 0:
            raise UsageError(f"the {needs_root[0].value} scan needs raw packets, which --unprivileged rules out")
        raise PrivilegeError(f"the {needs_root[0].value} scan ({needs_root[0].flag}) needs root privileges")
    if needs_root and not raw_available:
        raise UsageError(f"the {needs_root[0].value} scan is not available in this build")
    return wanted


@dataclass(frozen=True)
class ScanPlan:
    """The decisions every phase shares."""

    config: ScanConfig
    privileged: bool
    raw_available: bool
    scan_types: tuple[ScanType, ...]
    ports: PortList

    @classmethod
    def make(cls, config: ScanConfig, services: ServiceTable, *, raw_available: bool) -> ScanPlan:
        privileged = is_privileged(config)
        scan_types = effective_scan_types(config, privileged, raw_available)
        protocols = {t.protocol for t in scan_types} or {"tcp"}
        ports = select_ports(spec=config.ports, top_ports=config.top_ports, exclude=config.exclude_ports,
                             protocols=protocols, services=services)
        return cls(config, privileged, raw_available, scan_types, ports)

    def ports_for(self, scan_type: ScanType) -> list[int]:
        return list(self.ports.udp if scan_type.protocol == "udp" else self.ports.tcp)

    @property
    def raw_port_scan(self) -> bool:
        """Some scan type sends its own packets (so the kernel learns our neighbours' MACs)."""
        return any(t.kind.engine is Engine.RAW for t in self.scan_types)

    @property
    def raw_discovery(self) -> bool:
        """nmap as root: raw probes for IPv4 (ARP on directly connected Ethernet)."""
        return self.privileged and not self.config.ipv6 and self.raw_available

    @property
    def neighbour_discovery(self) -> bool:
        """As root over IPv6: neighbour solicitation on the link, pings beyond it."""
        return self.privileged and self.config.ipv6 and self.raw_available

    @property
    def arp_allowed(self) -> bool:
        return not (self.config.disable_arp_ping or self.config.send_ip)

    @property
    def streams_sweep(self) -> bool:
        """-sn as root over IPv4: one stream through the discovery engine instead of host groups."""
        config = self.config
        return (not (self.scan_types or config.list_only or config.skip_discovery or config.wants_traceroute)
                and self.raw_discovery)

    def group_size(self) -> int:
        """Hosts scanned together.

        A connect scan holds sockets per host, so its groups stay modest.  A
        raw scan's session holds only the probes in flight, so its groups are
        bounded by the port results they collect before hosts are written:
        a sweep of a few ports takes thousands of hosts at once, ``-p-``
        takes the minimum.
        """
        if not self.scan_types:
            size = DISCOVERY_GROUP
        elif any(t.kind.engine is Engine.CONNECT for t in self.scan_types):
            size = PORT_SCAN_GROUP
        else:
            ports = max(1, len(self.ports.tcp) + len(self.ports.udp))
            size = max(PORT_SCAN_GROUP, min(RAW_SCAN_GROUP_MAX, RAW_SCAN_RESULTS_PER_GROUP // ports))
        timing = self.config.timing
        if timing.max_hostgroup:
            size = min(size, timing.max_hostgroup)
        return max(size, timing.min_hostgroup)
