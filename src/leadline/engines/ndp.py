"""Privileged IPv6 host discovery: neighbour solicitation on the link, pings beyond it.

What goes out (nmap's documented behaviour for ``-6`` as root):
  * a target on a directly connected Ethernet segment gets a neighbour
    solicitation to its solicited-node multicast group (RFC 4861 §7.2.2)
    and nothing else; the solicited advertisement that answers names the
    target's MAC address (reason ``nd-response``);
  * any other target gets the -P probes that have an IPv6 form (ICMPv6
    echo, TCP SYN and ACK, UDP), or by default an ICMPv6 echo request, a
    SYN to 443 and an ACK to 80 (the IPv4 default set without the
    timestamp request, which has no ICMPv6 form);
  * one of our own addresses is up at once (``localhost-response``).

Everything else (pacing under --min-rate/--max-rate, spacing, retries,
timeouts) is the discovery session's, shared with IPv4
(``core.discoverysession``), and so is the loop that drives it
(``engines.discovery.run_discovery``), which also writes --pcap and
--packet-trace.  Solicitations leave through a link-layer socket
addressed to the group's 33:33:ff:xx:xx:xx MAC on the target's
interface, so no multicast route or scope id is involved.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from leadline.config import TIMING_TEMPLATES, DiscoveryProbe, Timing
from leadline.core.discoverysession import DEFAULT_MAX_IN_FLIGHT, DiscoverySession, HostPlan, probe_protocols
from leadline.core.evidence import PacketEvidence
from leadline.core.probes.base import ProbeContext
from leadline.core.ratecontrol import RateController
from leadline.engines.discovery import DiscoveryResult, ip_probe_plan, run_discovery
from leadline.engines.routes import Ipv6Routes, LinkRoute, local_ipv6_addresses, source_address_for
from leadline.errors import UsageError
from leadline.model import Reason

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_IPV6_PROBES", "Ipv6Routes", "LinkRoute", "ndp_discover"]

DEFAULT_ATTEMPTS = 2  # a neighbour that misses two solicitations a timeout apart is gone
DEFAULT_IPV6_PROBES = (DiscoveryProbe("echo"), DiscoveryProbe("syn", (443,)), DiscoveryProbe("ack", (80,)))
_IPV6_KINDS = ("echo", "syn", "ack", "udp")  # the -P probes with an IPv6 form
_NEEDS_ROOT = "IPv6 host discovery with raw packets needs root (or CAP_NET_RAW)"


def _interface_mac(interface: str) -> str:
    try:
        return Path(f"/sys/class/net/{interface}/address").read_text().strip()
    except OSError:
        raise UsageError(f"cannot read the MAC address of {interface}") from None


def _plans(hosts: Sequence[str], probes: Sequence[DiscoveryProbe], routes: Ipv6Routes) -> tuple[list[DiscoveryResult], list[HostPlan]]:
    """Results known at once (our own addresses, no route) and plans for the rest; bad input fails here."""
    local = local_ipv6_addresses()
    secret = os.urandom(16)
    ip_plan = ip_probe_plan(probes, DEFAULT_IPV6_PROBES, _IPV6_KINDS)
    contexts: dict[tuple[str, str | None], ProbeContext] = {}
    decided: list[DiscoveryResult] = []
    plans: list[HostPlan] = []
    for text in dict.fromkeys(hosts):
        try:
            address = str(ipaddress.IPv6Address(text))
        except ValueError:
            raise UsageError(f"{text!r} is not an IPv6 address; IPv6 discovery takes IPv6 targets only") from None
        if address in local:
            decided.append(DiscoveryResult(address, True, Reason.LOCALHOST))  # no latency, as nmap shows none
            continue
        route = routes.route_for(address)
        if route is None:
            decided.append(DiscoveryResult(address, False, Reason.NO_RESPONSE))
            continue
        source = source_address_for(address)
        mac = _interface_mac(route.interface) if route.ethernet_neighbour else None
        ctx = contexts.get((source, mac))
        if ctx is None:
            ctx = contexts[(source, mac)] = ProbeContext(source, secret, family=6, source_mac=mac)
        if route.ethernet_neighbour:
            plans.append(HostPlan(address, (("nd", 0),), ctx, route.interface, True))
        else:
            plans.append(HostPlan(address, ip_plan, ctx, route.interface, False))
    return decided, plans


def ndp_discover(
    hosts: Sequence[str],
    timing: Timing | None = None,
    *,
    probes: Sequence[DiscoveryProbe] = (),
    stop: threading.Event | None = None,
    evidence: PacketEvidence | None = None,
    attempts: int | None = None,
    routes: Ipv6Routes | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[DiscoveryResult]:
    """Decide which IPv6 ``hosts`` are up; one result per distinct address.

    On-link Ethernet targets are asked by neighbour solicitation, the rest
    by the -P ``probes`` that have an IPv6 form (none: nmap's IPv6 ping
    set).  Results known at once come first, then the others in target
    order as they are decided; the sweep ends after the last attempt's
    timeout, or as soon as ``stop`` is set (undecided hosts are then not
    reported).
    """
    timing = timing or TIMING_TEMPLATES[3]
    if attempts is None:
        attempts = min(DEFAULT_ATTEMPTS, timing.max_retries + 1)
    decided, plans = _plans(hosts, probes, routes or Ipv6Routes.load())
    return _sweep(decided, plans, timing, attempts, stop, evidence, clock)


def _sweep(decided: list[DiscoveryResult], plans: list[HostPlan], timing: Timing, attempts: int,
           stop: threading.Event | None, evidence: PacketEvidence | None,
           clock: Callable[[], float]) -> Iterator[DiscoveryResult]:
    yield from decided
    if not plans:
        return
    window = timing.max_parallelism or DEFAULT_MAX_IN_FLIGHT
    session = DiscoverySession(plans, timing, rate=RateController.from_timing(timing), attempts=attempts, max_in_flight=window)
    kinds = {kind for plan in plans for kind, _ in plan.probes}
    yield from run_discovery(session, 6, probe_protocols(kinds, 6), stop=stop, evidence=evidence, clock=clock, needs=_NEEDS_ROOT)
