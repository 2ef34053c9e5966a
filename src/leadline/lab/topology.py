"""A declarative description of a lab network.

A topology is plain data: hosts with interfaces on named segments, routes,
firewall rules, services and sysctls.  ``leadline.lab.builder`` turns it into
namespaces; nothing here touches the system.  ``Topology.validate`` keeps the
one safety promise of the lab: every address and route stays inside
198.18.0.0/15 (RFC 2544's benchmarking range) or, for IPv6, inside the
unique local prefix fd18:4c11::/48 (RFC 4193), so a lab can never send a
packet anywhere real.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field

from leadline.errors import LabError

__all__ = [
    "Host",
    "Interface",
    "LAB_RANGE",
    "LAB_RANGE6",
    "Route",
    "Rule",
    "Service",
    "ServiceKind",
    "Topology",
    "cluster_topology",
]

LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
# A unique local prefix: never routed on the Internet, and nothing else on
# these machines uses it, so a lab's IPv6 packets have nowhere to go.
LAB_RANGE6 = ipaddress.IPv6Network("fd18:4c11::/48")

_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,10}$")
_SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ROUTE_KINDS = frozenset({"unicast", "local", "blackhole", "unreachable", "prohibit"})
_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD"})


class ServiceKind(str, enum.Enum):
    """What a lab daemon does; each maps to one real program."""

    HTTP = "http"  # nginx answering 200 with a short page
    TCP_ECHO = "tcp-echo"  # socat echoing every byte back
    TCP_OPEN = "tcp-open"  # socat accepting and discarding
    TCP_BANNER = "tcp-banner"  # socat sending a greeting line, then discarding
    UDP_ECHO = "udp-echo"  # socat echoing each datagram
    UDP_LISTEN = "udp-listen"  # socat receiving and never answering
    UDP_DNS = "udp-dns"  # dnsmasq
    UDP_NTP = "udp-ntp"  # chronyd, serving time, never setting the clock
    UDP_SNMP = "udp-snmp"  # snmpd, community "public"
    UDP_MEMCACHED = "udp-memcached"  # memcached, UDP only
    UDP_TFTP = "udp-tftp"  # tftpd-hpa
    UDP_COAP = "udp-coap"  # libcoap's coap-server
    UDP_INETD_ECHO = "udp-inetd-echo"  # xinetd's built-in echo (RFC 862)
    UDP_INETD_DAYTIME = "udp-inetd-daytime"  # xinetd's built-in daytime (RFC 867)
    UDP_INETD_CHARGEN = "udp-inetd-chargen"  # xinetd's built-in chargen (RFC 864)
    UDP_DHCP = "udp-dhcp"  # dnsmasq's DHCP server, static mode: answers DHCPINFORM, leases nothing
    UDP_RPCBIND = "udp-rpcbind"  # rpcbind, the ONC RPC portmapper
    UDP_NETBIOS = "udp-netbios"  # samba's nmbd, NetBIOS name service
    UDP_QUIC = "udp-quic"  # ngtcp2's example server (GnuTLS), QUIC version negotiation
    UDP_IKE = "udp-ike"  # strongSwan's charon, no connections configured: answers NO_PROPOSAL_CHOSEN
    UDP_RIP = "udp-rip"  # FRR's ripd (with zebra), one RIP route of its own to offer
    UDP_SSDP = "udp-ssdp"  # miniupnpd, answering M-SEARCH
    UDP_SIP = "udp-sip"  # kamailio, answering OPTIONS
    UDP_MDNS = "udp-mdns"  # avahi-daemon, publishing its workstation service
    FTP_BOUNCE = "ftp-bounce"  # vsftpd with port_promiscuous=YES (lab/ftpd.py)
    FTP_STRICT = "ftp-strict"  # vsftpd refusing PORT to a third party
    LEGACY_STACK = "legacy-stack"  # our user-space TCP/IP responder (lab/legacy.py), one global IP ID

    @property
    def protocol(self) -> str:
        return "udp" if self.value.startswith("udp") else "tcp"


@dataclass(frozen=True, slots=True)
class Interface:
    """One network card of a host, plugged into a segment (a bridge)."""

    segment: str
    address: str  # "198.18.1.10/24"
    mac: str | None = None  # None: the kernel picks one
    address6: str | None = None  # "fd18:4c11:0:1::10/64"; None: the interface speaks IPv4 only

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def ip6(self) -> str | None:
        return str(ipaddress.ip_interface(self.address6).ip) if self.address6 else None


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of a host's main routing table."""

    destination: str  # "default" or a prefix
    via: str | None = None
    kind: str = "unicast"  # or "local", "blackhole", "unreachable", "prohibit"
    device: str | None = None  # "lo", "eth0", ...; None: let the kernel choose

    def ip_arguments(self) -> str:
        """The arguments of ``ip route add`` that create this route."""
        words = [self.kind, self.destination] if self.kind != "unicast" else [self.destination]
        if self.via:
            words += ["via", self.via]
        if self.device:
            words += ["dev", self.device]
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class Rule:
    """One iptables rule, appended in order to a chain of the filter table."""

    chain: str  # "INPUT", "OUTPUT" or "FORWARD"
    spec: str  # iptables match and target, e.g. "-p tcp --dport 23 -j REJECT --reject-with tcp-reset"
    family: int = 4  # 4: iptables; 6: ip6tables (the spec then uses ip6tables' vocabulary)


@dataclass(frozen=True, slots=True)
class Service:
    """A daemon listening on one port of a host."""

    kind: ServiceKind
    port: int
    banner: str = ""  # the greeting line of TCP_BANNER


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace: a machine of the lab."""

    name: str
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...] = ()
    firewall: tuple[Rule, ...] = ()
    services: tuple[Service, ...] = ()
    forwarding: bool = False  # a router forwards and filters reverse paths strictly
    ttl: int = 64  # net.ipv4.ip_default_ttl: the initial TTL OS detection sees
    # Further per-namespace settings, applied last.  Not net.ipv4.icmp_msgs_*:
    # some kernels keep those global, and the lab never changes the host.
    sysctls: tuple[tuple[str, str], ...] = ()
    role: str = ""  # one phrase for `lab status`

    @property
    def address(self) -> str:
        """The host's first address, the one scans aim at."""
        return self.interfaces[0].ip if self.interfaces else ""

    @property
    def address6(self) -> str | None:
        """The host's first IPv6 address, the one ``-6`` scans aim at; None without IPv6."""
        return next((i.ip6 for i in self.interfaces if i.ip6), None)

    @property
    def speaks_ipv6(self) -> bool:
        """Whether the namespace gets IPv6 at all; without it IPv6 stays disabled."""
        return self.address6 is not None


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole lab: its hosts and which of them runs the scans."""

    name: str
    hosts: tuple[Host, ...]
    scanner: str = "scanner"
    segments: tuple[str, ...] = field(default=())  # derived when left empty

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"the lab has no host named {name!r}")

    def segment_names(self) -> tuple[str, ...]:
        if self.segments:
            return self.segments
        seen: dict[str, None] = {}
        for host in self.hosts:
            for interface in host.interfaces:
                seen.setdefault(interface.segment, None)
        return tuple(seen)

    def validate(self) -> None:
        """Raise LabError naming the first thing that is wrong or unsafe."""
        names = [host.name for host in self.hosts]
        if len(set(names)) != len(names):
            raise LabError(f"topology {self.name!r} names a host twice")
        if self.scanner not in names:
            raise LabError(f"topology {self.name!r} has no scanner host {self.scanner!r}")
        segments = set(self.segment_names())
        for segment in segments:
            if not _SEGMENT_NAME.match(segment):
                raise LabError(f"bad segment name {segment!r}: use 1-12 of [a-z0-9]")
        for host in self.hosts:
            _validate_host(host, segments)


def _validate_host(host: Host, segments: set[str]) -> None:
    if not _HOST_NAME.match(host.name) or host.name == "switch":
        raise LabError(f"bad host name {host.name!r}: use 1-11 of [a-z0-9], not 'switch'")
    for interface in host.interfaces:
        if interface.segment not in segments:
            raise LabError(f"host {host.name}: unknown segment {interface.segment!r}")
        _require_lab_network(host.name, interface.address)
        if interface.address6 is not None:
            _require_lab_network(host.name, interface.address6, family=6)
        if interface.mac is not None and not _MAC.match(interface.mac):
            raise LabError(f"host {host.name}: bad MAC address {interface.mac!r}")
    for route in host.routes:
        if route.kind not in _ROUTE_KINDS:
            raise LabError(f"host {host.name}: unknown route kind {route.kind!r}")
        family = None
        if route.destination != "default":
            family = _require_lab_network(host.name, route.destination)
        if route.via is not None:
            via_family = _require_lab_network(host.name, route.via, family=family)
            if route.destination == "default" and via_family != 4:
                # "default" means the IPv4 default route; an IPv6 one would
                # cover the whole Internet, so IPv6 routes name a lab prefix.
                raise LabError(f"host {host.name}: an IPv6 route must name a prefix in {LAB_RANGE6}")
    for rule in host.firewall:
        if rule.chain not in _CHAINS:
            raise LabError(f"host {host.name}: unknown chain {rule.chain!r}")
        if rule.family not in (4, 6):
            raise LabError(f"host {host.name}: bad rule family {rule.family!r}: use 4 or 6")
    for service in host.services:
        if not 1 <= service.port <= 65535:
            raise LabError(f"host {host.name}: bad port {service.port}")
    if not 1 <= host.ttl <= 255:
        raise LabError(f"host {host.name}: bad TTL {host.ttl}")


def _require_lab_network(host_name: str, text: str, family: int | None = None) -> int:
    """The address family of ``text``, which must lie in the lab range of that family.

    ``family`` demands one family (an interface's IPv6 address, a route's
    gateway matching its destination); None takes either.
    """
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise LabError(f"host {host_name}: bad address {text!r}") from None
    if family is not None and network.version != family:
        raise LabError(f"host {host_name}: {text} is not an IPv{family} address")
    if isinstance(network, ipaddress.IPv6Network):
        if not network.subnet_of(LAB_RANGE6):
            raise LabError(f"host {host_name}: {text} lies outside the lab's IPv6 range {LAB_RANGE6}")
        return 6
    if not network.subnet_of(LAB_RANGE):
        raise LabError(f"host {host_name}: {text} lies outside the lab range {LAB_RANGE}")
    return 4


def routed_range_topology(swept: str = "198.19.0.0/17", network: str = "198.18.75") -> Topology:
    """A scanner, a router and a target that answers for every address of ``swept`` (a ``local``
    route on its loopback), one hop away: a large routed range of answering hosts for sweeps.

    Scanner ``<network>.2``, router ``<network>.1`` and ``<network+1>.1``, target ``<network+1>.2``.
    """
    base, last = network.rsplit(".", 1)
    far = f"{base}.{int(last) + 1}"
    return Topology(
        "routed-range",
        (
            Host("scanner", (Interface("near", f"{network}.2/24"),),
                 routes=(Route(swept, via=f"{network}.1"), Route(f"{far}.0/24", via=f"{network}.1"))),
            Host("router", (Interface("near", f"{network}.1/24"), Interface("far", f"{far}.1/24")),
                 routes=(Route(swept, via=f"{far}.2"),), forwarding=True),
            Host("target", (Interface("far", f"{far}.2/24"),),
                 routes=(Route(swept, kind="local", device="lo"), Route(f"{network}.0/24", via=f"{far}.1")),
                 role="answers for the whole swept range"),
        ),
    )


def cluster_topology(swept: str = "198.19.64.0/23") -> Topology:
    """Three "machines" on one LAN — the scanner (the scheduler and the coordinator run there) and two
    cluster workers ``wa`` and ``wb``, each with its own address and routes — and a router before a
    target that answers for every address of ``swept`` (a ``local`` route on its loopback).

    Addresses of the /22 around ``swept`` outside it are routed to the target too, which drops them:
    hosts that are down.  LAN 198.18.82.0/24 (router .1, scanner .10, wa .11, wb .12); far side
    198.18.83.0/24 (router .1, target .2).
    """
    around = str(ipaddress.ip_network(swept).supernet(new_prefix=22))
    lan_routes = (Route(around, via="198.18.82.1"), Route("198.18.83.0/24", via="198.18.82.1"))
    return Topology(
        "cluster",
        (
            Host("scanner", (Interface("lan", "198.18.82.10/24"),), routes=lan_routes,
                 role="the Dask scheduler and the leadline coordinator"),
            Host("wa", (Interface("lan", "198.18.82.11/24"),), routes=lan_routes, role="a cluster worker"),
            Host("wb", (Interface("lan", "198.18.82.12/24"),), routes=lan_routes, role="a cluster worker"),
            Host("router", (Interface("lan", "198.18.82.1/24"), Interface("far", "198.18.83.1/24")),
                 routes=(Route(around, via="198.18.83.2"),), forwarding=True),
            Host("target", (Interface("far", "198.18.83.2/24"),),
                 routes=(Route(swept, kind="local", device="lo"), Route("198.18.82.0/24", via="198.18.83.1")),
                 role="answers for the swept range"),
        ),
    )
