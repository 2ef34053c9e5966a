"""The practice lab: a network of Linux namespaces to scan safely (docs/lab.md)."""

from __future__ import annotations

from leadline.lab.control import DaemonStatus, HostStatus, Lab, LabStatus, require_root
from leadline.lab.practice import practice_topology
from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind, Topology

__all__ = [
    "DaemonStatus",
    "Host",
    "HostStatus",
    "Interface",
    "Lab",
    "LabStatus",
    "Route",
    "Rule",
    "Service",
    "ServiceKind",
    "Topology",
    "practice_topology",
    "require_root",
]
