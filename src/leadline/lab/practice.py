"""The standard practice network that `leadline lab up` builds (docs/lab.md).

The constants are the addresses tests and docs refer to; the topology is the
one place that says how each host answers.
"""

from __future__ import annotations

from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind, Topology

SCANNER = "198.18.1.2"
ROUTER1 = "198.18.1.1"
ROUTER1_FAR_SIDE = "198.18.2.1"
COURSE = "198.18.1.10"
IOT = "198.18.1.20"
WINDOWS = "198.18.1.30"
FIREWALL = "198.18.1.40"
NO_HOST = "198.18.1.50"
ROUTER2 = "198.18.2.2"
ROUTER2_FAR_SIDE = "198.18.3.1"
FAR = "198.18.3.10"

LAN = "198.18.1.0/24"
TRANSIT = "198.18.2.0/24"
FAR_LAN = "198.18.3.0/24"

IOT_MAC = "b8:27:eb:4c:11:20"  # Raspberry Pi Foundation
WINDOWS_MAC = "00:15:5d:4c:11:30"  # Microsoft

COURSE_ECHO_PORT = 50007
COURSE_HTTP_PORT = 50008
COURSE_DROPPED_PORTS = (50000, 50001, 50002, 50003, 50004, 50005, 50006, 50009)
WINDOWS_OPEN_PORTS = (135, 139, 445, 3389, 5357)
IOT_UDP_PORTS = (68, 5353)
FIREWALL_OPEN_PORT = 22
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
FAR_SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2"


def _mac(index: int) -> str:
    """A locally administered MAC, stable so ARP discovery output is too."""
    return f"02:4c:11:00:00:{index:02x}"


def _lan(address: str, mac: str) -> tuple[Interface, ...]:
    return (Interface("lan", f"{address}/24", mac),)


_VIA_ROUTER1 = (Route("198.18.0.0/15", via=ROUTER1),)


def practice_topology() -> Topology:
    """The network of docs/lab.md."""
    dropped = ",".join(str(port) for port in COURSE_DROPPED_PORTS)
    course = Host(
        "course",
        _lan(COURSE, _mac(0x10)),
        routes=_VIA_ROUTER1,
        firewall=(
            Rule("INPUT", f"-p tcp -m multiport --dports {dropped} -j DROP"),
            Rule("INPUT", f"-p udp -m multiport --dports {dropped} -j DROP"),
        ),
        services=(
            Service(ServiceKind.TCP_ECHO, COURSE_ECHO_PORT),
            Service(ServiceKind.HTTP, COURSE_HTTP_PORT),
        ),
        role="course server",
    )
    iot = Host(
        "iot",
        _lan(IOT, IOT_MAC),
        routes=_VIA_ROUTER1,
        services=(
            Service(ServiceKind.HTTP, 80),
            Service(ServiceKind.UDP_LISTEN, 68),
            Service(ServiceKind.UDP_ECHO, 5353),
        ),
        role="IoT device",
    )
    windows_open = ",".join(str(port) for port in WINDOWS_OPEN_PORTS)
    windows = Host(
        "windows",
        _lan(WINDOWS, WINDOWS_MAC),
        routes=_VIA_ROUTER1,
        firewall=(
            Rule("INPUT", f"-p tcp -m multiport --dports {windows_open} -j ACCEPT"),
            Rule("INPUT", "-p tcp -j DROP"),
        ),
        services=tuple(Service(ServiceKind.TCP_OPEN, port) for port in WINDOWS_OPEN_PORTS),
        ttl=128,
        role="Windows-like",
    )
    firewall_rules = [
        Rule("INPUT", f"-p tcp -m multiport --dports {','.join(map(str, FIREWALL_RESET_PORTS))} "
             "-j REJECT --reject-with tcp-reset"),
    ]
    for port, icmp_type in FIREWALL_ICMP_REJECTS.items():
        firewall_rules.append(Rule("INPUT", f"-p tcp --dport {port} -j REJECT --reject-with {icmp_type}"))
    firewall_rules.append(Rule("INPUT", f"-p tcp --dport {FIREWALL_DROPPED_PORT} -j DROP"))
    firewall = Host(
        "firewall",
        _lan(FIREWALL, _mac(0x40)),
        routes=_VIA_ROUTER1,
        firewall=tuple(firewall_rules),
        services=(Service(ServiceKind.TCP_OPEN, FIREWALL_OPEN_PORT),),
        role="packet filter",
    )
    scanner = Host(
        "scanner",
        _lan(SCANNER, _mac(0x02)),
        routes=(Route("default", via=ROUTER1),),
        role="scans run here",
    )
    router1 = Host(
        "router1",
        (Interface("lan", f"{ROUTER1}/24", _mac(0x01)),
         Interface("transit", f"{ROUTER1_FAR_SIDE}/24", _mac(0x81))),
        routes=(Route(FAR_LAN, via=ROUTER2),),
        forwarding=True,
        role="first hop",
    )
    router2 = Host(
        "router2",
        (Interface("transit", f"{ROUTER2}/24", _mac(0x82)),
         Interface("farlan", f"{ROUTER2_FAR_SIDE}/24", _mac(0x91))),
        routes=(Route(LAN, via=ROUTER1_FAR_SIDE),),
        forwarding=True,
        role="second hop",
    )
    far = Host(
        "far",
        (Interface("farlan", f"{FAR}/24", _mac(0x9a)),),
        routes=(Route("198.18.0.0/15", via=ROUTER2_FAR_SIDE),),
        services=(
            Service(ServiceKind.TCP_BANNER, 22, banner=FAR_SSH_BANNER),
            Service(ServiceKind.HTTP, 80),
        ),
        role="two hops away",
    )
    return Topology(
        "practice",
        (scanner, router1, course, iot, windows, firewall, router2, far),
        scanner="scanner",
    )
