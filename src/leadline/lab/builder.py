"""Turning a topology into namespaces, links, addresses, routes, sysctls and rules.

Segments are bridges inside one extra "switch" namespace, and every host
reaches them through a veth pair created straight into the two namespaces,
so the root namespace never holds an address, a route or even an interface
of the lab.  Work is batched (one ``ip -batch`` per namespace) and the
namespaces are configured in parallel, so a whole lab builds in about a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from leadline.errors import LabError
from leadline.lab import netns
from leadline.lab.topology import Host, Topology

__all__ = [
    "all_namespaces",
    "base_sysctls",
    "configure",
    "create_links",
    "create_namespaces",
    "host_commands",
    "namespace_name",
    "wait_until_forwarding",
]

SWITCH = "switch"


def namespace_name(prefix: str, host: str) -> str:
    return f"{prefix}-{host}"


def bridge_name(segment: str) -> str:
    return f"br-{segment}"


def switch_port_name(host: Host, index: int) -> str:
    """The switch-side end of a host's veth: readable, and within IFNAMSIZ."""
    return f"{host.name}-{index}"


def in_parallel(jobs: Iterable[Callable[[], None]]) -> None:
    """Run independent setup steps at once; the first failure is raised."""
    job_list = list(jobs)
    if not job_list:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(job_list))) as pool:
        for future in [pool.submit(job) for job in job_list]:
            future.result()


def base_sysctls(forwarding: bool, ttl: int, ipv6: bool = False) -> dict[str, str]:
    """Settings that make a namespace answer only as its topology says.

    Without ``ipv6`` IPv6 is off, so no router solicitation or MLD report
    ever appears on a segment.  With it, IPv6 is on but silent until asked:
    no duplicate-address probes, no router solicitations, no router
    advertisements accepted (``ipv6_quiet_rules`` drops the MLD reports no
    sysctl can stop), so a segment carries only what a scan causes.  The
    kernel's EUI-64 link-local address stays: a router solicits the next
    hop of a forwarded packet from it, and would stay mute without one.  Routers filter reverse paths strictly so nothing
    with a source outside the lab is forwarded.
    """
    values: dict[str, str] = {}
    if os.path.isdir("/proc/sys/net/ipv6"):
        if ipv6:
            for scope in ("all", "default"):
                values[f"net.ipv6.conf.{scope}.accept_dad"] = "0"
                values[f"net.ipv6.conf.{scope}.router_solicitations"] = "0"
                values[f"net.ipv6.conf.{scope}.accept_ra"] = "0"
                values[f"net.ipv6.conf.{scope}.accept_redirects"] = "0"
                values[f"net.ipv6.conf.{scope}.hop_limit"] = str(ttl)
            values["net.ipv6.conf.all.forwarding"] = "1" if forwarding else "0"
            values["net.ipv6.icmp.ratelimit"] = "0"  # as icmp_ratelimit below, for ICMPv6
            values["net.ipv6.conf.all.disable_ipv6"] = "0"
            values["net.ipv6.conf.default.disable_ipv6"] = "0"
        else:
            values["net.ipv6.conf.all.disable_ipv6"] = "1"
            values["net.ipv6.conf.default.disable_ipv6"] = "1"
    values["net.ipv4.ip_forward"] = "1" if forwarding else "0"
    strictness = "1" if forwarding else "0"
    values["net.ipv4.conf.all.rp_filter"] = strictness
    values["net.ipv4.conf.default.rp_filter"] = strictness
    values["net.ipv4.ip_default_ttl"] = str(ttl)
    # Linux answers each destination with at most one error per second (burst
    # 6), so two scans in a row would see different verdicts.  The lab answers
    # every probe; Lab.set_sysctls brings the limit back where a test wants it.
    values["net.ipv4.icmp_ratelimit"] = "0"
    return values


# ICMPv6 types a host sends on its own: MLD query, report and done (130-132),
# router solicitation (133) and MLDv2 report (143).  Dropping them on the way
# out keeps a segment silent between scans; neighbour discovery (135/136)
# and everything a probe asks for still pass.
_UNSOLICITED_ICMPV6 = (130, 131, 132, 133, 143)


def ipv6_quiet_rules() -> list[tuple[str, str]]:
    """ip6tables rules (chain, spec) that stop a host's unsolicited IPv6 chatter."""
    return [("OUTPUT", f"-p ipv6-icmp --icmpv6-type {icmp_type} -j DROP")
            for icmp_type in _UNSOLICITED_ICMPV6]


def create_namespaces(topology: Topology, prefix: str) -> None:
    """Create every namespace, then give each its sysctls before any link exists."""
    netns.add_namespaces(all_namespaces(topology, prefix))
    jobs = [_sysctl_job(namespace_name(prefix, SWITCH), base_sysctls(False, 64))]
    for host in topology.hosts:
        values = base_sysctls(host.forwarding, host.ttl, host.speaks_ipv6) | dict(host.sysctls)
        jobs.append(_sysctl_job(namespace_name(prefix, host.name), values))
    in_parallel(jobs)


def all_namespaces(topology: Topology, prefix: str) -> list[str]:
    return [namespace_name(prefix, SWITCH)] + [namespace_name(prefix, h.name) for h in topology.hosts]


def _sysctl_job(namespace: str, values: dict[str, str]) -> Callable[[], None]:
    return lambda: netns.set_sysctls(namespace, values)


def create_links(topology: Topology, prefix: str) -> None:
    """Create every veth pair in one batch, each end born in its namespace."""
    switch = namespace_name(prefix, SWITCH)
    lines = []
    for host in topology.hosts:
        for index, interface in enumerate(host.interfaces):
            mac = f" address {interface.mac}" if interface.mac else ""
            lines.append(f"link add eth{index} netns {namespace_name(prefix, host.name)}{mac} "
                         f"type veth peer name {switch_port_name(host, index)} netns {switch}")
    netns.ip_batch(lines)


def configure(topology: Topology, prefix: str) -> None:
    """Addresses, routes and firewall rules of every host, and the switch's bridges."""
    jobs = [lambda: netns.ip_batch(switch_commands(topology), namespace_name(prefix, SWITCH))]
    for host in topology.hosts:
        jobs.append(_host_job(host, namespace_name(prefix, host.name)))
    in_parallel(jobs)


def switch_commands(topology: Topology) -> list[str]:
    lines = ["link set lo up"]
    for segment in topology.segment_names():
        bridge = bridge_name(segment)
        lines.append(f"link add {bridge} type bridge stp_state 0 forward_delay 0 mcast_snooping 0")
        lines.append(f"link set {bridge} up")
    for host in topology.hosts:
        for index, interface in enumerate(host.interfaces):
            port = switch_port_name(host, index)
            lines.append(f"link set {port} master {bridge_name(interface.segment)}")
            lines.append(f"link set {port} up")
    return lines


def host_commands(host: Host) -> list[str]:
    lines = ["link set lo up"]
    for index, interface in enumerate(host.interfaces):
        lines.append(f"addr add {interface.address} dev eth{index}")
        if interface.address6:
            lines.append(f"addr add {interface.address6} dev eth{index}")
        lines.append(f"link set eth{index} up")
    lines += [f"route add {route.ip_arguments()}" for route in host.routes]
    return lines


def _host_job(host: Host, namespace: str) -> Callable[[], None]:
    def job() -> None:
        if host.speaks_ipv6:
            # Before any link is up, so not even the first MLD report escapes.
            rules6 = ipv6_quiet_rules() + [(r.chain, r.spec) for r in host.firewall if r.family == 6]
            netns.restore_filter_table(namespace, rules6, family=6)
        netns.ip_batch(host_commands(host), namespace)
        rules = [(r.chain, r.spec) for r in host.firewall if r.family == 4]
        if rules:
            netns.restore_filter_table(namespace, rules)
    return job


def wait_until_forwarding(topology: Topology, prefix: str, timeout: float = 5.0) -> None:
    """Wait, bounded, until every link carries traffic.

    The kernel reports a new veth's carrier to the bridge asynchronously (up
    to a second later), and until then the bridge drops frames: the first ARP
    request of a scan would vanish.  So `up` returns only once every host
    interface is operationally up and every bridge port forwards.
    """
    wanted = {namespace_name(prefix, SWITCH): {switch_port_name(h, i)
                                               for h in topology.hosts
                                               for i in range(len(h.interfaces))}}
    for host in topology.hosts:
        wanted[namespace_name(prefix, host.name)] = {f"eth{i}" for i in range(len(host.interfaces))}
    deadline = time.monotonic() + timeout
    while True:
        lagging = [(ns, name) for ns, names in wanted.items()
                   for name, (oper, port) in _states(ns, names).items()
                   if oper != "UP" or port not in (None, "forwarding")]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise LabError(f"link {lagging[0][1]} in {lagging[0][0]} is not up after {timeout:g} s")
        time.sleep(0.05)


def _states(namespace: str, names: set[str]) -> dict[str, tuple[str, str | None]]:
    states = netns.link_states(namespace)
    return {name: states.get(name, ("MISSING", None)) for name in names}
