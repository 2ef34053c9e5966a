"""The standard practice network that `leadline lab up` builds (docs/lab.md).

The constants are the addresses tests and docs refer to; the topology is the
one place that says how each host answers.
"""

from __future__ import annotations

from leadline.lab.ftpd import ftp_host
from leadline.lab.legacy import legacy_host
from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind, Topology
from leadline.lab.udpservices import udp_server

__all__ = [
    "COURSE",
    "COURSE6",
    "COURSE_DROPPED_PORTS",
    "COURSE_ECHO_PORT",
    "COURSE_HTTP_PORT",
    "DESKTOP",
    "DESKTOP6",
    "DESKTOP_OPEN_PORT",
    "FAR",
    "FAR6",
    "FAR_LAN",
    "FAR_LAN6",
    "FAR_SSH_BANNER",
    "FIREWALL",
    "FIREWALL6",
    "FIREWALL_DROPPED_PORT",
    "FIREWALL_ICMP6_REJECTS",
    "FIREWALL_ICMP_REJECTS",
    "FIREWALL_OPEN_PORT",
    "FIREWALL_RESET_PORTS",
    "GEAR",
    "GEAR6",
    "GEAR_OPEN_PORT",
    "IOT",
    "IOT6",
    "IOT_MAC",
    "IOT_UDP_PORTS",
    "LAB_PREFIX6",
    "LAN",
    "LAN6",
    "NO_HOST",
    "NO_HOST6",
    "ROUTER1",
    "ROUTER1_6",
    "ROUTER1_FAR_SIDE",
    "ROUTER1_FAR_SIDE6",
    "ROUTER2",
    "ROUTER2_6",
    "ROUTER2_FAR_SIDE",
    "ROUTER2_FAR_SIDE6",
    "SCANNER",
    "SCANNER6",
    "TRANSIT",
    "TRANSIT6",
    "WINDOWS",
    "WINDOWS6",
    "WINDOWS_MAC",
    "WINDOWS_OPEN_PORTS",
    "practice_topology",
]

SCANNER = "198.18.1.2"
ROUTER1 = "198.18.1.1"
ROUTER1_FAR_SIDE = "198.18.2.1"
COURSE = "198.18.1.10"
IOT = "198.18.1.20"
WINDOWS = "198.18.1.30"
FIREWALL = "198.18.1.40"
NO_HOST = "198.18.1.50"
DESKTOP = "198.18.1.60"
GEAR = "198.18.1.70"
ROUTER2 = "198.18.2.2"
ROUTER2_FAR_SIDE = "198.18.3.1"
FAR = "198.18.3.10"

LAN = "198.18.1.0/24"
TRANSIT = "198.18.2.0/24"
FAR_LAN = "198.18.3.0/24"

# IPv6: one /64 per segment inside the lab's unique local prefix, and each
# host's interface identifier is the last byte of its IPv4 address, so
# 198.18.1.10 is fd18:4c11:0:1::10 (read the identifier as the same digits).
LAB_PREFIX6 = "fd18:4c11::/48"
LAN6 = "fd18:4c11:0:1::/64"
TRANSIT6 = "fd18:4c11:0:2::/64"
FAR_LAN6 = "fd18:4c11:0:3::/64"
SCANNER6 = "fd18:4c11:0:1::2"
ROUTER1_6 = "fd18:4c11:0:1::1"
ROUTER1_FAR_SIDE6 = "fd18:4c11:0:2::1"
COURSE6 = "fd18:4c11:0:1::10"
IOT6 = "fd18:4c11:0:1::20"
WINDOWS6 = "fd18:4c11:0:1::30"
FIREWALL6 = "fd18:4c11:0:1::40"
NO_HOST6 = "fd18:4c11:0:1::50"
DESKTOP6 = "fd18:4c11:0:1::60"
GEAR6 = "fd18:4c11:0:1::70"
ROUTER2_6 = "fd18:4c11:0:2::2"
ROUTER2_FAR_SIDE6 = "fd18:4c11:0:3::1"
FAR6 = "fd18:4c11:0:3::10"

IOT_MAC = "b8:27:eb:4c:11:20"  # Raspberry Pi Foundation
WINDOWS_MAC = "00:15:5d:4c:11:30"  # Microsoft

COURSE_ECHO_PORT = 50007
COURSE_HTTP_PORT = 50008
COURSE_DROPPED_PORTS = (50000, 50001, 50002, 50003, 50004, 50005, 50006, 50009)
WINDOWS_OPEN_PORTS = (135, 139, 445, 3389, 5357)
IOT_UDP_PORTS = (68, 5353)
FIREWALL_OPEN_PORT = 22
DESKTOP_OPEN_PORT = 3389
GEAR_OPEN_PORT = 23
FIREWALL_RESET_PORTS = (23, 25)
FIREWALL_DROPPED_PORT = 8080
# port -> the --reject-with type the firewall host answers with
FIREWALL_ICMP_REJECTS = {
    110: "icmp-host-unreachable",
    111: "icmp-net-unreachable",
    143: "icmp-admin-prohibited",
    993: "icmp-port-unreachable",
    995: "icmp-host-prohibited",
}
# The same rejections over IPv6, in ICMPv6's vocabulary (RFC 4443 codes):
# address unreachable (3), no route (0), administratively prohibited (1),
# port unreachable (4), source address failed policy (5).
FIREWALL_ICMP6_REJECTS = {
    110: "icmp6-addr-unreachable",
    111: "icmp6-no-route",
    143: "icmp6-adm-prohibited",
    993: "icmp6-port-unreachable",
    995: "icmp6-policy-fail",
}
FAR_SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2"


def _mac(index: int) -> str:
    """A locally administered MAC, stable so ARP discovery output is too."""
    return f"02:4c:11:00:00:{index:02x}"


def _lan(address: str, mac: str, address6: str) -> tuple[Interface, ...]:
    return (Interface("lan", f"{address}/24", mac, f"{address6}/64"),)


def _both(chain: str, spec: str) -> tuple[Rule, Rule]:
    """A rule whose words mean the same to iptables and ip6tables, for both families."""
    return Rule(chain, spec), Rule(chain, spec, family=6)


_VIA_ROUTER1 = (Route("198.18.0.0/15", via=ROUTER1), Route(LAB_PREFIX6, via=ROUTER1_6))


def _course() -> Host:
    """Two services, and a block of ports that drop everything (filtered)."""
    dropped = ",".join(str(port) for port in COURSE_DROPPED_PORTS)
    return Host(
        "course",
        _lan(COURSE, _mac(0x10), COURSE6),
        routes=_VIA_ROUTER1,
        firewall=(
            *_both("INPUT", f"-p tcp -m multiport --dports {dropped} -j DROP"),
            *_both("INPUT", f"-p udp -m multiport --dports {dropped} -j DROP"),
        ),
        services=(
            Service(ServiceKind.TCP_ECHO, COURSE_ECHO_PORT),
            Service(ServiceKind.HTTP, COURSE_HTTP_PORT),
        ),
        role="course server",
    )


def _iot() -> Host:
    """A vendor MAC (ARP discovery names it) and UDP services."""
    return Host(
        "iot",
        _lan(IOT, IOT_MAC, IOT6),
        routes=_VIA_ROUTER1,
        services=(
            Service(ServiceKind.HTTP, 80),
            Service(ServiceKind.UDP_LISTEN, 68),
            Service(ServiceKind.UDP_ECHO, 5353),
        ),
        role="IoT device",
    )


def _windows() -> Host:
    """TTL 128 and every other TCP port silently dropped, as a default Windows firewall does."""
    windows_open = ",".join(str(port) for port in WINDOWS_OPEN_PORTS)
    return Host(
        "windows",
        _lan(WINDOWS, WINDOWS_MAC, WINDOWS6),
        routes=_VIA_ROUTER1,
        firewall=(
            *_both("INPUT", f"-p tcp -m multiport --dports {windows_open} -j ACCEPT"),
            *_both("INPUT", "-p tcp -j DROP"),
        ),
        services=tuple(Service(ServiceKind.TCP_OPEN, port) for port in WINDOWS_OPEN_PORTS),
        ttl=128,
        role="Windows-like",
    )


def _firewall_rules(family: int, rejects: dict[int, str]) -> list[Rule]:
    """Resets, one ICMP rejection of each kind, and a dropped port, for one address family."""
    resets = ",".join(map(str, FIREWALL_RESET_PORTS))
    rules = [Rule("INPUT", f"-p tcp -m multiport --dports {resets} -j REJECT --reject-with tcp-reset", family=family)]
    for port, icmp_type in rejects.items():
        rules.append(Rule("INPUT", f"-p tcp --dport {port} -j REJECT --reject-with {icmp_type}", family=family))
    rules.append(Rule("INPUT", f"-p tcp --dport {FIREWALL_DROPPED_PORT} -j DROP", family=family))
    return rules


def _firewall() -> Host:
    """Every way a packet filter can answer a TCP probe, on one host."""
    return Host(
        "firewall",
        _lan(FIREWALL, _mac(0x40), FIREWALL6),
        routes=_VIA_ROUTER1,
        firewall=(*_firewall_rules(4, FIREWALL_ICMP_REJECTS), *_firewall_rules(6, FIREWALL_ICMP6_REJECTS)),
        services=(Service(ServiceKind.TCP_OPEN, FIREWALL_OPEN_PORT),),
        role="packet filter",
    )


def _routers() -> tuple[Host, Host]:
    """Two forwarding hops between the LAN and the far LAN (reason_ttl 62 beyond them)."""
    router1 = Host(
        "router1",
        (Interface("lan", f"{ROUTER1}/24", _mac(0x01), f"{ROUTER1_6}/64"),
         Interface("transit", f"{ROUTER1_FAR_SIDE}/24", _mac(0x81), f"{ROUTER1_FAR_SIDE6}/64")),
        routes=(Route(FAR_LAN, via=ROUTER2), Route(FAR_LAN6, via=ROUTER2_6)),
        forwarding=True,
        role="first hop",
    )
    router2 = Host(
        "router2",
        (Interface("transit", f"{ROUTER2}/24", _mac(0x82), f"{ROUTER2_6}/64"),
         Interface("farlan", f"{ROUTER2_FAR_SIDE}/24", _mac(0x91), f"{ROUTER2_FAR_SIDE6}/64")),
        routes=(Route(LAN, via=ROUTER1_FAR_SIDE), Route(LAN6, via=ROUTER1_FAR_SIDE6)),
        forwarding=True,
        role="second hop",
    )
    return router1, router2


def _far() -> Host:
    """A host behind both routers, with a banner."""
    return Host(
        "far",
        (Interface("farlan", f"{FAR}/24", _mac(0x9a), f"{FAR6}/64"),),
        routes=(Route("198.18.0.0/15", via=ROUTER2_FAR_SIDE), Route(LAB_PREFIX6, via=ROUTER2_FAR_SIDE6)),
        services=(
            Service(ServiceKind.TCP_BANNER, 22, banner=FAR_SSH_BANNER),
            Service(ServiceKind.HTTP, 80),
        ),
        role="two hops away",
    )


def _fingerprint_hosts() -> tuple[Host, Host]:
    """Two stacks OS detection must tell from the Linux hosts: a desktop and a piece of network gear.

    ``desktop`` starts at TTL 128 and leaves out TCP timestamps, SACK and
    window scaling, with a smaller receive buffer (so another SYN/ACK window);
    ``gear`` starts at TTL 255, as routers and switches do.
    """
    desktop = Host(
        "desktop",
        _lan(DESKTOP, _mac(0x60), DESKTOP6),
        routes=_VIA_ROUTER1,
        services=(Service(ServiceKind.TCP_OPEN, DESKTOP_OPEN_PORT),),
        ttl=128,
        sysctls=(("net.ipv4.tcp_timestamps", "0"), ("net.ipv4.tcp_sack", "0"),
                 ("net.ipv4.tcp_window_scaling", "0"), ("net.ipv4.tcp_rmem", "4096 8192 65536")),
        role="TTL-128 desktop",
    )
    gear = Host(
        "gear",
        _lan(GEAR, _mac(0x70), GEAR6),
        routes=_VIA_ROUTER1,
        services=(Service(ServiceKind.TCP_OPEN, GEAR_OPEN_PORT),),
        ttl=255,
        role="TTL-255 network gear",
    )
    return desktop, gear


def practice_topology() -> Topology:
    """The network of docs/lab.md."""
    scanner = Host(
        "scanner",
        _lan(SCANNER, _mac(0x02), SCANNER6),
        routes=(Route("default", via=ROUTER1), Route(LAB_PREFIX6, via=ROUTER1_6)),
        role="scans run here",
    )
    router1, router2 = _routers()
    return Topology(
        "practice",
        (scanner, router1, _course(), _iot(), _windows(), _firewall(), *_fingerprint_hosts(), router2, _far(),
         udp_server(ROUTER1, ROUTER1_6), legacy_host(_VIA_ROUTER1[:1]), ftp_host(_VIA_ROUTER1[:1])),
        scanner="scanner",
    )
