"""A chain of three routers, the middle one silent: the network traceroute's tests walk.

    scanner ── r1 ── r2 (sends no time-exceeded) ── r3 ── target, target2
                                                     └─ 198.18.44.0/24: refused (ICMP unreachable)

A route through it reads: r1, silence, r3, then the target, four hops
away.  r3 refuses to forward to 198.18.44.0/24 (and fd18:4c11:0:44::/64)
with ICMP unreachable, so a trace there ends at r3, at TTL 4.  Both address families; every
address inside the lab ranges.  Built like any lab:
``Lab(prefix).up(chain_topology())``.
"""

from __future__ import annotations

from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind, Topology

__all__ = [
    "CHAIN_R1",
    "CHAIN_R1_6",
    "CHAIN_R2",
    "CHAIN_R2_6",
    "CHAIN_R3",
    "CHAIN_R3_6",
    "CHAIN_REFUSED",
    "CHAIN_REFUSED6",
    "CHAIN_TARGET",
    "CHAIN_TARGET2",
    "CHAIN_TARGET2_6",
    "CHAIN_TARGET6",
    "CHAIN_TARGET_PORT",
    "chain_topology",
]

CHAIN_R1, CHAIN_R2, CHAIN_R3 = "198.18.40.1", "198.18.41.2", "198.18.42.2"  # the addresses that answer a trace
CHAIN_TARGET, CHAIN_TARGET2 = "198.18.43.10", "198.18.43.20"
CHAIN_REFUSED = "198.18.44.10"
CHAIN_R1_6, CHAIN_R2_6, CHAIN_R3_6 = "fd18:4c11:0:40::1", "fd18:4c11:0:41::2", "fd18:4c11:0:42::2"
CHAIN_TARGET6, CHAIN_TARGET2_6 = "fd18:4c11:0:43::10", "fd18:4c11:0:43::20"
CHAIN_REFUSED6 = "fd18:4c11:0:44::10"
CHAIN_TARGET_PORT = 80  # open on the first target; every other port of both targets is closed

_PREFIX6 = "fd18:4c11::/48"


def _net(n: int) -> tuple[str, str]:
    return f"198.18.{n}.0/24", f"fd18:4c11:0:{n}::/64"


def _iface(segment: str, n: int, host: int) -> Interface:
    return Interface(segment, f"198.18.{n}.{host}/24", None, f"fd18:4c11:0:{n}::{host}/64")


def _routes(toward: dict[int, tuple[int, int]]) -> tuple[Route, ...]:
    """Routes to each numbered segment via (segment, host) of the next router."""
    routes = []
    for n, (via_net, via_host) in toward.items():
        four, six = _net(n)
        routes += [Route(four, via=f"198.18.{via_net}.{via_host}"), Route(six, via=f"fd18:4c11:0:{via_net}::{via_host}")]
    return tuple(routes)


def chain_topology() -> Topology:
    """The chain; the scanner is "scanner", as in every lab."""
    scanner = Host("scanner", (_iface("c40", 40, 2),),
                   routes=(Route("default", via="198.18.40.1"), Route(_PREFIX6, via="fd18:4c11:0:40::1")),
                   role="scans run here")
    r1 = Host("r1", (_iface("c40", 40, 1), _iface("c41", 41, 1)),
              routes=_routes({42: (41, 2), 43: (41, 2), 44: (41, 2)}), forwarding=True, role="first hop")
    r2 = Host("r2", (_iface("c41", 41, 2), _iface("c42", 42, 1)),
              routes=_routes({40: (41, 1), 43: (42, 2), 44: (42, 2)}), forwarding=True,
              firewall=(Rule("OUTPUT", "-p icmp --icmp-type time-exceeded -j DROP"),
                        Rule("OUTPUT", "-p ipv6-icmp --icmpv6-type time-exceeded -j DROP", family=6)),
              role="silent hop (no time-exceeded)")
    refused4, refused6 = _net(44)
    # A filter, not an "unreachable" route: the kernel limits route errors to a burst of five,
    # while a REJECT answers every probe (time-exceeded still comes first for a TTL ending here).
    r3 = Host("r3", (_iface("c42", 42, 2), _iface("c43", 43, 1)),
              routes=(*_routes({40: (42, 1), 41: (42, 1)}), Route(refused4, via="198.18.43.20"),
                      Route(refused6, via="fd18:4c11:0:43::20")),
              firewall=(Rule("FORWARD", f"-d {refused4} -j REJECT --reject-with icmp-host-unreachable"),
                        Rule("FORWARD", f"-d {refused6} -j REJECT --reject-with icmp6-addr-unreachable", family=6)),
              forwarding=True, role="third hop; refuses 198.18.44.0/24")
    back = (Route("198.18.0.0/15", via="198.18.43.1"), Route(_PREFIX6, via="fd18:4c11:0:43::1"))
    target = Host("target", (_iface("c43", 43, 10),), routes=back,
                  services=(Service(ServiceKind.TCP_OPEN, CHAIN_TARGET_PORT),), role="four hops away")
    target2 = Host("target2", (_iface("c43", 43, 20),), routes=back, role="four hops away, ports closed")
    return Topology("chain", (scanner, r1, r2, r3, target, target2), scanner="scanner")
