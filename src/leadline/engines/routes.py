"""Where packets to a target go: routing tables, local addresses and the interface each route uses.

Read once per scan from ``/proc`` (IPv4: ``/proc/net/route``; IPv6:
``/proc/net/ipv6_route``) and matched longest-prefix-first in Python, so
a sweep of a /16 asks the kernel nothing per target.  Discovery reads
from here whether a target is a directly connected Ethernet neighbour
(ARP and ND reach it, its MAC is seen); the capture in ``packetio``
reads which interface the route uses, so it listens there and nowhere
else (on a Linux bridge an unbound packet socket sees every frame twice:
from the bridge port and from the bridge).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "InterfaceFinder",
    "Ipv6Routes",
    "LinkPath",
    "LinkRoute",
    "RouteTable",
    "local_ipv6_addresses",
    "source_address_for",
]

_ARPHRD_ETHER = 1
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200
LOOPBACK = "lo"


def source_address_for(dst: str) -> str:
    """The local address the kernel would use to reach ``dst``; no packet is sent."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((dst, 9))
        return str(probe.getsockname()[0])


@dataclass(frozen=True, slots=True)
class LinkPath:
    """How a target is reached: from which address, over which interface, and whether directly."""

    interface: str
    source: str
    on_link: bool  # no gateway: the target itself answers ARP
    ethernet: bool  # the interface carries Ethernet frames (ARP and MACs make sense)
    source_mac: str | None = None

    @property
    def ethernet_neighbour(self) -> bool:
        """The target is on a directly connected Ethernet link: ARP reaches it and its MAC is seen."""
        return self.on_link and self.ethernet


# -- the routing table ----------------------------------------------------------------


@dataclass(slots=True)
class _Route:
    network: int
    mask: int
    prefix: int
    metric: int
    interface: str
    gateway: int
    path: LinkPath | None = None  # filled on first use (needs a source-address lookup)
    # No route before this one in the table overlaps it, so an address inside it matches it first:
    # a lookup may answer from the last route found without walking the table.
    exclusive: bool = False


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


class RouteTable:
    """The namespace's IPv4 main routing table and local addresses, read once per scan.

    Longest-prefix match over ``/proc/net/route`` tells, for every target
    without a syscall, whether it is directly connected and through which
    interface; the source address is asked of the kernel once per route.
    """

    def __init__(self, route_text: str, local_addresses: Iterable[str]) -> None:
        self._routes: list[_Route] = []
        for line in route_text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 8:
                continue
            try:
                destination, gateway, flags, metric, mask = (
                    int(fields[1], 16), int(fields[2], 16), int(fields[3], 16), int(fields[6]), int(fields[7], 16)
                )
            except ValueError:
                continue
            if not flags & 0x1:  # RTF_UP
                continue
            # /proc/net/route prints addresses in host (little-endian) byte order.
            network = struct.unpack("!I", struct.pack("<I", destination))[0]
            netmask = struct.unpack("!I", struct.pack("<I", mask))[0]
            self._routes.append(_Route(network, netmask, bin(netmask).count("1"), metric, fields[0], gateway))
        self._routes.sort(key=lambda r: (-r.prefix, r.metric))
        for index, route in enumerate(self._routes):
            route.exclusive = not any(r.network & route.mask == route.network for r in self._routes[:index])
        self._last: _Route | None = None
        self.local = frozenset(local_addresses)

    @classmethod
    def load(cls) -> RouteTable:
        return cls(_read_text("/proc/net/route") or "", _local_addresses())

    def arp_reaches(self, address: str) -> bool:
        """Whether ARP discovery applies to ``address``: an Ethernet neighbour that is not ours."""
        path = self.path_for(address)
        return path is not None and path.ethernet_neighbour and address not in self.local

    def path_for(self, address: str) -> LinkPath | None:
        """How ``address`` is reached, or None when no route leads there."""
        route = self._route_for(address)
        if route is None:
            return None
        if route.path is None:
            route.path = self._describe(route, address)
        return route.path

    def interface_for(self, address: str) -> str | None:
        """The interface the route to ``address`` uses; None without a route.  No syscall."""
        route = self._route_for(address)
        return route.interface if route is not None else None

    def _route_for(self, address: str) -> _Route | None:
        value = int.from_bytes(socket.inet_aton(address), "big")
        last = self._last  # a sweep asks for neighbouring addresses, one after another
        if last is not None and value & last.mask == last.network:
            return last
        for route in self._routes:
            if value & route.mask == route.network:
                if route.exclusive:
                    self._last = route
                return route
        return None

    @staticmethod
    def _describe(route: _Route, address: str) -> LinkPath | None:
        try:
            source = source_address_for(address)
        except OSError:
            return None
        kind = _read_text(f"/sys/class/net/{route.interface}/type")
        ethernet = kind is not None and kind.strip() == str(_ARPHRD_ETHER) and route.interface != LOOPBACK
        mac = _read_text(f"/sys/class/net/{route.interface}/address") if ethernet else None
        return LinkPath(route.interface, source, route.gateway == 0, ethernet, mac.strip() if mac else None)


def _local_addresses() -> set[str]:
    """Every IPv4 address of this namespace (``ip -j addr``); empty if iproute2 cannot tell."""
    try:
        listing = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=10, check=True)
        return {
            info["local"]
            for link in json.loads(listing.stdout)
            for info in link.get("addr_info", ())
            if "local" in info
        }
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return set()


@dataclass(frozen=True, slots=True)
class LinkRoute:
    """How a target is reached: over which interface, and whether it is on that link."""

    interface: str
    on_link: bool  # no gateway: the target itself answers neighbour solicitations
    ethernet: bool  # the interface carries Ethernet frames, so ND and MACs make sense

    @property
    def ethernet_neighbour(self) -> bool:
        """The target is on a directly connected Ethernet link: neighbour solicitation reaches it."""
        return self.on_link and self.ethernet


class Ipv6Routes:
    """The namespace's IPv6 main routing table (``/proc/net/ipv6_route``), read once per sweep.

    Longest-prefix match tells, without a syscall per target, whether a
    target is on a directly connected link and through which interface.
    """

    def __init__(self, route_text: str, interface_types: dict[str, int]) -> None:
        # (prefix length, network, via a gateway?, device; "" for a reject route)
        self._routes: list[tuple[int, int, bool, str]] = []
        for line in route_text.splitlines():
            fields = line.split()
            if len(fields) != 10:
                continue
            try:
                network, length = int(fields[0], 16), int(fields[1], 16)
                gateway, flags = int(fields[4], 16), int(fields[8], 16)
            except ValueError:
                continue
            if not flags & _RTF_UP or length > 128:
                continue
            # A reject route (unreachable, blackhole, prohibit) shadows wider routes: kept, it says "nowhere".
            device = "" if flags & _RTF_REJECT else fields[9]
            if device == LOOPBACK:
                continue
            self._routes.append((length, network, gateway != 0, device))
        self._routes.sort(key=lambda route: -route[0])
        self._types = interface_types

    @classmethod
    def load(cls) -> Ipv6Routes:
        types = {}
        for _, name in socket.if_nameindex():
            try:
                types[name] = int(Path(f"/sys/class/net/{name}/type").read_text())
            except (OSError, ValueError):
                continue
        try:
            text = Path("/proc/net/ipv6_route").read_text()
        except OSError:
            text = ""  # IPv6 disabled: every target is unreachable
        return cls(text, types)

    def nd_reaches(self, address: str) -> bool:
        """Whether neighbour solicitation applies to ``address``."""
        route = self.route_for(address)
        return route is not None and route.ethernet_neighbour

    def route_for(self, address: str) -> LinkRoute | None:
        value = int(ipaddress.IPv6Address(address))
        for length, network, via_gateway, device in self._routes:
            if length == 0 or value >> (128 - length) == network >> (128 - length):
                if not device:
                    return None
                ethernet = self._types.get(device) == _ARPHRD_ETHER
                return LinkRoute(device, not via_gateway, ethernet)
        return None


def local_ipv6_addresses() -> set[str]:
    """Every IPv6 address of this namespace (``/proc/net/if_inet6``)."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return set()
    return {str(ipaddress.IPv6Address(int(line.split()[0], 16))) for line in lines if line.split()}


class InterfaceFinder:
    """Which interface the route to an address uses: ``lo`` for our own addresses, None when unknown.

    Both tables are read on first use of their family; answers are cached
    per address (a raw scan asks once per probe's destination).
    """

    def __init__(self, ipv4: RouteTable | None = None, ipv6: Ipv6Routes | None = None) -> None:
        self._ipv4 = ipv4
        self._ipv6 = ipv6
        self._local6: frozenset[str] | None = None
        self._known: dict[str, str | None] = {}

    def __call__(self, address: str) -> str | None:
        try:
            return self._known[address]
        except KeyError:
            pass
        interface = self._lookup(address)
        self._known[address] = interface
        return interface

    def _lookup(self, address: str) -> str | None:
        if ":" in address:
            if self._ipv6 is None:
                self._ipv6 = Ipv6Routes.load()
            if self._local6 is None:
                self._local6 = frozenset(local_ipv6_addresses())
            canonical = str(ipaddress.IPv6Address(address))
            if canonical in self._local6:
                return LOOPBACK
            route = self._ipv6.route_for(canonical)
            return route.interface if route is not None else None
        if self._ipv4 is None:
            self._ipv4 = RouteTable.load()
        if address in self._ipv4.local or address.startswith("127."):
            return LOOPBACK
        return self._ipv4.interface_for(address)
