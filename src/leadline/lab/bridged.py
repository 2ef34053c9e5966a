"""A scanner whose interface is a Linux bridge, with the targets' veths enslaved to it.

That is how hypervisors and container hosts are wired, and it is the case
where a packet socket not bound to an interface receives every frame
twice (once from the bridge port, once from the bridge).  The topology
builder plugs every host into the switch namespace, so this module
describes the targets as a topology and then moves their switch-side
veth ends into the scanner's namespace, under a bridge that carries the
scanner's address.  The practice topology is not touched.
"""

from __future__ import annotations

import time

from leadline.errors import LabError
from leadline.lab import builder, netns
from leadline.lab.control import Lab
from leadline.lab.topology import Host, Interface, Topology

__all__ = ["BRIDGE", "bridge_the_scanner", "bridged_scanner_topology"]

BRIDGE = "br0"


def bridged_scanner_topology(network: str = "198.18.74", targets: int = 2) -> Topology:
    """Targets ``<network>.10``, ``.11``, ... on one segment; the scanner has no interface until
    ``bridge_the_scanner`` gives it the bridge (address ``<network>.2/24``)."""
    hosts = [Host("scanner", (), role="scans from a bridge holding the targets' links")]
    for index in range(targets):
        hosts.append(Host(f"t{index + 1}", (Interface("lan", f"{network}.{10 + index}/24"),), role="answers as a kernel does"))
    return Topology("bridged-scanner", tuple(hosts))


def bridge_the_scanner(lab: Lab, topology: Topology, address: str, timeout: float = 5.0) -> None:
    """Move every target's switch port into the scanner's namespace, enslaved to a bridge that holds ``address``."""
    switch = lab.namespace(builder.SWITCH)
    scanner = lab.namespace(topology.scanner)
    ports = [builder.switch_port_name(host, index)
             for host in topology.hosts if host.name != topology.scanner
             for index in range(len(host.interfaces))]
    netns.ip_batch([f"link set {port} netns {scanner}" for port in ports], switch)
    lines = [f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0"]
    for port in ports:
        lines += [f"link set {port} master {BRIDGE}", f"link set {port} up"]
    lines += [f"link set {BRIDGE} up", f"addr add {address} dev {BRIDGE}"]
    netns.ip_batch(lines, scanner)
    deadline = time.monotonic() + timeout
    while True:
        states = netns.link_states(scanner)
        lagging = [port for port in ports if states.get(port, ("", None))[1] != "forwarding"]
        if not lagging and states.get(BRIDGE, ("", None))[0] == "UP":
            return
        if time.monotonic() > deadline:
            raise LabError(f"bridge {BRIDGE} in {scanner} does not forward after {timeout:g} s")
        time.sleep(0.05)
