"""Which interface a capture listens on (routing tables read from text), and the probe plans of discovery."""

from __future__ import annotations

from leadline.config import DiscoveryProbe
from leadline.core.discoverysession import probe_protocols
from leadline.engines.discovery import DEFAULT_IP_PROBES, ip_probe_plan
from leadline.engines.ndp import DEFAULT_IPV6_PROBES
from leadline.engines.routes import InterfaceFinder, Ipv6Routes, RouteTable

# /proc/net/route: addresses little-endian hex.  198.18.1.0/24 on br0, 198.19.0.0/17 via 198.18.1.1 on br0,
# 198.18.9.0/24 on eth1, and a default route via eth2.
ROUTES4 = (
    "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    "br0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "br0\t000013C6\t010112C6\t0003\t0\t0\t0\t0080FFFF\t0\t0\t0\n"
    "eth1\t000912C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth2\t00000000\t0A0912C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
)
ROUTES6 = (
    "fd184c11000000010000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     br0\n"
    "fd184c11000000090000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000400 00000001 00000000 00200201     eth1\n"
)


def finder() -> InterfaceFinder:
    return InterfaceFinder(RouteTable(ROUTES4, {"198.18.1.2"}), Ipv6Routes(ROUTES6, {"br0": 1, "eth1": 1}))


def test_the_capture_listens_where_the_route_leads() -> None:
    find = finder()
    assert find("198.18.1.10") == "br0"  # on the bridge's segment: the bridge, not its ports
    assert find("198.19.100.7") == "br0"  # routed through a gateway on the bridge
    assert find("198.18.9.3") == "eth1"
    assert find("198.18.200.1") == "eth2"  # the default route
    assert find("198.18.1.2") == "lo"  # our own address: the kernel loops it back
    assert find("127.0.0.1") == "lo"
    assert find("fd18:4c11:0:1::10") == "br0"
    assert find("fd18:4c11:0:9::1") is None  # a reject route: nowhere
    assert find("fd18:4c11:0:5::1") is None  # no route at all


def test_without_a_default_route_nothing_is_found() -> None:
    find = InterfaceFinder(RouteTable("Iface\tDestination\n" + ROUTES4.splitlines()[1] + "\n", set()), Ipv6Routes("", {}))
    assert find("198.18.1.10") == "br0"
    assert find("198.18.200.1") is None


def test_ip_probe_plans_for_both_families() -> None:
    assert ip_probe_plan(()) == tuple((p.kind, (p.ports or (0,))[0]) for p in DEFAULT_IP_PROBES)
    asked = (DiscoveryProbe("echo"), DiscoveryProbe("syn", (22, 80)), DiscoveryProbe("timestamp"), DiscoveryProbe("arp"))
    assert ip_probe_plan(asked) == (("echo", 0), ("syn", 22), ("syn", 80), ("timestamp", 0))
    ipv6_kinds = ("echo", "syn", "ack", "udp")
    # -PP has no ICMPv6 form: alone, it leaves IPv6 with nmap's IPv6 defaults.
    assert ip_probe_plan((DiscoveryProbe("timestamp"),), DEFAULT_IPV6_PROBES, ipv6_kinds) == (("echo", 0), ("syn", 443), ("ack", 80))
    assert ip_probe_plan(asked, DEFAULT_IPV6_PROBES, ipv6_kinds) == (("echo", 0), ("syn", 22), ("syn", 80))


def test_the_capture_passes_the_protocols_of_the_probes_and_icmp() -> None:
    assert probe_protocols({"echo"}, 4) == (1,)
    assert probe_protocols({"syn", "ack", "timestamp"}, 4) == (1, 6)
    assert probe_protocols({"echo", "syn", "udp"}, 6) == (6, 17, 58)
    assert probe_protocols({"nd"}, 6) == (58,)


def test_the_last_route_shortcut_answers_as_a_full_walk_with_nested_routes() -> None:
    """198.19.0.0/17 holds a more specific 198.19.5.0/24 on eth3: the /17 must never answer for it,
    whatever was asked before; the default route is never taken as a shortcut."""
    nested = ROUTES4 + "eth3\t000513C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    table = RouteTable(nested, set())
    walk = RouteTable(nested, set())
    asked = ["198.19.4.1", "198.19.5.7", "198.19.6.1", "198.19.5.8", "198.18.1.9", "198.18.9.3", "8.8.8.8",
             "198.18.9.4", "198.19.5.9", "198.19.127.1", "10.0.0.1", "198.18.1.10"]
    for address in asked:
        walk._last = None  # a fresh walk every time
        assert table.interface_for(address) == walk.interface_for(address), address
    assert [table.interface_for(a) for a in ("198.19.4.1", "198.19.5.7", "198.19.4.2", "198.19.5.1")] == \
        ["br0", "eth3", "br0", "eth3"]
