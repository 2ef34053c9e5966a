"""``--exposure``: label each listening socket by what a scan from outside reached.

``exposed``: the probe reached the socket (SYN/ACK; a UDP reply, or the
datagram was delivered).  ``filtered``: the socket listens but the probe
was dropped or rejected, so a firewall stands between; the rule is named
when it can be read.  ``local-only``: bound to loopback, nothing from
outside can reach it, so it is not probed.  ``untested``: no probe could
be aimed at it (bound to an address the probe link does not reach, or
IPv6-only: the probe link speaks IPv4 only).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from leadline.local.firewall import Rules, find_rule, read_rules
from leadline.local.model import Exposure, LocalSocket
from leadline.local.probe import (
    LAB_RANGE,
    check_target,
    probe_link,
    probe_udp,
    scan_tcp,
)
from leadline.local.who import socket_options

__all__ = ["Outcome", "ProbeView", "assess", "classify_tcp", "classify_udp", "target_of"]

Outcome = tuple[str, str]  # (label, detail) before a rule is named


@dataclass(frozen=True)
class ProbeView:
    """Where the probes come from and which of our addresses they may aim at."""

    namespace: str
    addresses: tuple[str, ...]  # ours, in 198.18.0.0/15, that the probe namespace can reach


def classify_tcp(state: str, reason: str) -> Outcome:
    """A listening TCP socket's label from leadline's verdict on its port."""
    if state == "open":
        return "exposed", reason
    if state == "closed":
        return "filtered", f"rejected ({reason})"  # it listens, so the RST came from a rule
    if reason in ("no-response", ""):
        return "filtered", "dropped (no-response)"
    return "filtered", f"rejected ({reason})"


def classify_udp(outcome: str) -> Outcome:
    """A listening UDP socket's label from the probe's outcome."""
    if outcome == "reply":
        return "exposed", "udp-response"
    if outcome == "delivered":
        return "exposed", "delivered (no reply)"
    if outcome == "dropped":
        return "filtered", "dropped (no-response)"
    return "filtered", f"rejected ({outcome})"


def _dual_stack(item: LocalSocket) -> bool:
    """Does an IPv6 wildcard socket take IPv4 too?"""
    if item.pid is not None and item.fd is not None:
        options = socket_options(item.pid, item.fd)
        if options is not None and options.v6only is not None:
            return not options.v6only
    try:
        with open("/proc/sys/net/ipv6/bindv6only", encoding="ascii") as handle:
            return handle.read().strip() == "0"
    except OSError:
        return True


def target_of(item: LocalSocket, view: ProbeView) -> str | Outcome:
    """The address to probe for a listener, or its label when it cannot or need not be probed."""
    if item.loopback:
        return "local-only", f"bound to {item.local_address}"
    if not view.addresses:
        return "untested", f"no address in {LAB_RANGE} reachable from {view.namespace}"
    if item.local_address == "0.0.0.0" or (item.local_address == "::" and _dual_stack(item)):
        return view.addresses[0]
    address = ipaddress.ip_address(item.local_address)
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.version == 6:
        return "untested", "IPv6 only; the probe link speaks IPv4"
    if str(address) in view.addresses:
        return str(address)
    return "untested", f"bound to {item.local_address}, which the probe link does not reach"


def _label(item: LocalSocket, outcome: Outcome, rules: Rules) -> Exposure:
    label, detail = outcome
    rule = find_rule(rules, item.protocol, item.local_port) if label == "filtered" else None
    return Exposure(label, detail, rule.family if rule else None, rule.text if rule else None)


def _own_lab_addresses() -> tuple[str, ...]:
    found = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family.name == "AF_INET" and ipaddress.ip_address(entry.address) in LAB_RANGE:
                found.append(entry.address)
    return tuple(sorted(found))


def _probe(view: ProbeView, items: Sequence[LocalSocket], rules: Rules) -> list[LocalSocket]:
    wanted: dict[tuple[str, str], set[int]] = defaultdict(set)
    targets: dict[int, str | Outcome] = {}
    for index, item in enumerate(items):
        target = target_of(item, view)
        targets[index] = target
        if isinstance(target, str):
            wanted[(target, item.protocol)].add(item.local_port)
    results: dict[tuple[str, str, int], Outcome] = {}
    for (address, protocol), ports in sorted(wanted.items()):
        check_target(address, view.addresses)
        if protocol == "tcp":
            for port, (state, reason) in scan_tcp(view.namespace, address, ports).items():
                results[(address, "tcp", port)] = classify_tcp(state, reason)
        else:
            for port, answer in probe_udp(view.namespace, address, ports).items():
                results[(address, "udp", port)] = classify_udp(answer)
    labelled = []
    for index, item in enumerate(items):
        target = targets[index]
        outcome: Outcome = (results.get((target, item.protocol, item.local_port), ("untested", "no probe result"))
                            if isinstance(target, str) else target)
        labelled.append(item._replace(exposure=_label(item, outcome, rules)))
    return labelled


def assess(items: Sequence[LocalSocket], from_namespace: str | None = None) -> tuple[list[LocalSocket], dict[str, str]]:
    """The listening sockets among ``items`` labelled, and how the outside view was taken."""
    listeners = [item for item in items if item.listening]
    rules = read_rules()
    method = "leadline -sS (tcp); one datagram per port, delivery counted (udp)"
    if from_namespace is not None:
        view = ProbeView(from_namespace, _own_lab_addresses())
        labelled = _probe(view, listeners, rules)
        address = view.addresses[0] if view.addresses else ""
        return labelled, {"from": from_namespace, "address": address, "method": method}
    with probe_link() as link:
        view = ProbeView(link.namespace, (link.host_address,))
        labelled = _probe(view, listeners, rules)
    return labelled, {"from": link.namespace, "address": link.host_address, "method": method}
