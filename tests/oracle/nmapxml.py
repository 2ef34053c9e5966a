"""Reading port states out of nmap-format XML, for oracle comparisons.

Both nmap's and leadline's files go through the same reader, which
expands folded ``<extraports>`` back into one state per port so that
two scans can be compared port by port.  Each ``<extraports count>`` (and
``<extrareasons count>``) is checked against the ports it folds, and a
port is never filled in that the file does not account for: a port the
scanner forgot to report stays missing, and the comparison shows it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["FoldError", "HostStates", "diff_states", "expand_ports", "read_states"]

Key = tuple[str, int]  # (protocol, port)
Verdict = tuple[str, str]  # (state, reason)


class FoldError(ValueError):
    """An ``<extraports>`` element does not hold the ports its ``count`` says it folds."""


def expand_ports(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


@dataclass(frozen=True)
class HostStates:
    address: str
    status: str
    status_reason: str
    ports: dict[Key, Verdict]  # (proto, port) -> (state, reason)
    mac: str | None = None


def _count(element: ET.Element, where: str) -> int:
    text = element.get("count")
    if text is None or not text.isdigit():
        raise FoldError(f"{where}: <{element.tag}> has no count")
    return int(text)


def _listed_ports(ports_element: ET.Element, where: str) -> dict[Key, Verdict]:
    ports: dict[Key, Verdict] = {}
    for p in ports_element.findall("port"):
        s = p.find("state")
        assert s is not None, f"{where}: <port> without <state>"
        key = (p.get("protocol", ""), int(p.get("portid", "0")))
        if key in ports:
            raise FoldError(f"{where}: port {key[1]}/{key[0]} listed twice")
        ports[key] = (s.get("state", ""), s.get("reason", ""))
    return ports


def _fold_listed(extra: ET.Element, reasons: list[ET.Element], ports: dict[Key, Verdict], where: str) -> None:
    """Fold an ``<extraports>`` whose ``<extrareasons>`` name their ports (nmap 7.80 on, and leadline)."""
    state, total = extra.get("state", ""), 0
    for er in reasons:
        proto, reason = er.get("proto", "tcp"), er.get("reason", "")
        folded = expand_ports(er.get("ports", ""))
        if er.get("count") is not None and _count(er, where) != len(folded):
            raise FoldError(f"{where}: extrareasons {reason!r} count={er.get('count')} but names {len(folded)} ports")
        for port in folded:
            if (proto, port) in ports:
                raise FoldError(f"{where}: port {port}/{proto} folded into {state!r} is reported twice")
            ports[(proto, port)] = (state, reason)
        total += len(folded)
    if total != _count(extra, where):
        raise FoldError(f"{where}: extraports {state!r} count={extra.get('count')} but folds {total} ports")


def _fold_unlisted(extra: ET.Element, reasons: list[ET.Element], ports: dict[Key, Verdict],
                   scanned: dict[str, list[int]], where: str) -> None:
    """Fold the one ``<extraports>`` that names no ports: every scanned port not reported otherwise."""
    state = extra.get("state", "")
    reason = reasons[0].get("reason", "") if len(reasons) == 1 else ""
    missing = [(proto, port) for proto, plist in scanned.items() for port in plist if (proto, port) not in ports]
    if len(missing) != _count(extra, where):
        raise FoldError(f"{where}: extraports {state!r} count={extra.get('count')} "
                        f"but {len(missing)} scanned ports are not listed")
    for key in missing:
        ports[key] = (state, reason)


def _host_ports(ports_element: ET.Element, scanned: dict[str, list[int]], where: str) -> dict[Key, Verdict]:
    """Every port of one host, the folded ones expanded, each ``count`` checked against what it folds."""
    ports = _listed_ports(ports_element, where)
    unlisted: list[tuple[ET.Element, list[ET.Element]]] = []
    extras = ports_element.findall("extraports")
    for extra in extras:
        reasons = extra.findall("extrareasons")
        if reasons and all(er.get("ports") is not None for er in reasons):
            _fold_listed(extra, reasons, ports, where)
        else:
            unlisted.append((extra, reasons))
    if unlisted:
        if len(extras) != 1:
            raise FoldError(f"{where}: {len(extras)} <extraports> and some name no ports: cannot tell them apart")
        _fold_unlisted(*unlisted[0], ports, scanned, where)
    return ports


def read_states(xml_text: str) -> dict[str, HostStates]:
    """address -> its status and the state of every scanned port; ``FoldError`` if a count disagrees."""
    root = ET.fromstring(xml_text)
    scanned: dict[str, list[int]] = {}
    for si in root.findall("scaninfo"):
        scanned.setdefault(si.get("protocol", "tcp"), []).extend(expand_ports(si.get("services", "")))
    hosts: dict[str, HostStates] = {}
    for h in root.findall("host"):
        addr = mac = None
        for a in h.findall("address"):
            if a.get("addrtype") in ("ipv4", "ipv6"):
                addr = a.get("addr")
            elif a.get("addrtype") == "mac":
                mac = a.get("addr")
        assert addr is not None
        st = h.find("status")
        assert st is not None
        pe = h.find("ports")
        ports = _host_ports(pe, scanned, f"host {addr}") if pe is not None else {}
        hosts[addr] = HostStates(addr, st.get("state", ""), st.get("reason", ""), ports, mac)
    return hosts


def diff_states(ours: HostStates, theirs: HostStates, with_reason: bool = True) -> list[str]:
    """Human-readable differences, empty when every port agrees."""
    out = []
    for key in sorted(set(ours.ports) | set(theirs.ports)):
        a = ours.ports.get(key)
        b = theirs.ports.get(key)
        if a is None or b is None or a[0] != b[0] or (with_reason and a[1] != b[1]):
            out.append(f"{key[1]}/{key[0]}: leadline={a} nmap={b}")
    return out
